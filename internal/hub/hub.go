package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Authenticator verifies the token of an auth message (Verify) and tells
// whether the claims of an open connection are still valid (Check: a
// revoked session must end; see Recheck).
type Authenticator interface {
	Verify(ctx context.Context, token string) (auth.Claims, error)
	Check(ctx context.Context, c auth.Claims) error
}

// DeliveryStore keeps messages that must be acknowledged until they are.
type DeliveryStore interface {
	// InsertDeliveries stores ds in one go and returns them with their ids.
	InsertDeliveries(ctx context.Context, ds []model.Delivery) ([]model.Delivery, error)
	// AckDeliveries deletes the recipient's deliveries ids and returns
	// those it deleted.
	AckDeliveries(ctx context.Context, recipient string, ids []int64) ([]int64, error)
	PendingDeliveries(ctx context.Context, recipient string, limit int) ([]model.Delivery, error)
}

// Config tunes the hub. Zero values take the defaults noted.
type Config struct {
	SendQueue    int           // items queued per connection; a batch of readings is one item (256)
	MaxBatch     int           // messages per batch frame (64)
	AuthTimeout  time.Duration // time to send the auth message (5s)
	PingInterval time.Duration // WebSocket ping period; two missed periods close (30s)
	WriteTimeout time.Duration // one frame write; a client that stops reading is closed after it (5s)
	HighWater    int           // queued items past which readings are thinned (SendQueue/2)
	// HighWaterMsgs: queued messages past which readings are thinned
	// (16384). Items are batches of any size, so the item count alone can
	// let a slow client fall minutes behind.
	HighWaterMsgs int
	ResumeMax     int           // messages one stream of a resume may replay (10000)
	ResumeMaxAge  time.Duration // how far back a resume of readings may reach (1h)
	ReadLimit     int64         // bytes per frame; larger closes with 1009 (64 KiB)
	// SendBuffer caps the kernel's send buffer of each connection, in
	// bytes (128 KiB; negative: the kernel's own, which grows to MBs on
	// Linux). A client that reads slowly then backs up into the
	// connection's queue within seconds, where thinning sees it, instead
	// of into megabytes of socket buffer that hide it for minutes.
	SendBuffer int
	Rate       float64 // requests per second per connection (20)
	Burst      int     // request burst per connection (40)
	MaxPerUser int     // open connections per user; more are refused with 4029 (20)
	MaxPerAddr int     // open connections per client address; more are refused with 4029 (200)
}

func (c *Config) defaults() {
	setDefault(&c.SendQueue, 256)
	setDefault(&c.MaxBatch, 64)
	setDefault(&c.AuthTimeout, 5*time.Second)
	setDefault(&c.PingInterval, 30*time.Second)
	setDefault(&c.WriteTimeout, 5*time.Second)
	setDefault(&c.HighWater, max(1, c.SendQueue/2))
	setDefault(&c.HighWaterMsgs, 16384)
	setDefault(&c.ResumeMax, 10000)
	setDefault(&c.ResumeMaxAge, time.Hour)
	setDefault(&c.ReadLimit, 64<<10)
	setDefault(&c.SendBuffer, 128<<10)
	setDefault(&c.Rate, 20)
	setDefault(&c.Burst, 40)
	setDefault(&c.MaxPerUser, 20)
	setDefault(&c.MaxPerAddr, 200)
}

// Defaults returns the configuration a zero Config stands for: the hub's
// own defaults, for use without config (tests, embedding). The config
// package's defaults are the same values (its tests check it).
func Defaults() Config {
	var c Config
	c.defaults()
	return c
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

type route struct {
	min model.Role
	fn  protocol.HandlerFunc
}

// Hub is the registry of live connections.
type Hub struct {
	cfg        Config
	auth       Authenticator
	deliveries DeliveryStore
	log        *slog.Logger
	m          *metrics
	now        func() time.Time
	routes     map[string]route
	replayers  map[string]protocol.Replayer
	relay      Relay // nil on a single instance (relay.go)
	relayLog   rate.Sometimes

	mu       sync.Mutex // guards byUser, byAddr, closed, presence calls and writes to conns
	byUser   map[string]map[*conn]struct{}
	byAddr   map[string]int // open connections per client address
	presence protocol.PresenceListener
	closed   bool
	conns    atomic.Pointer[[]*conn] // copy-on-write snapshot for broadcasts
	wg       sync.WaitGroup          // one per live connection

	stats stats

	// afterRegister, when set by a test, runs right after a connection is
	// registered: the first moment broadcasts can reach it.
	afterRegister func()

	// afterFunc runs f after d and returns its stop function: the token
	// expiry of each connection (time.AfterFunc; tests fire it by hand).
	afterFunc func(d time.Duration, f func()) (stop func() bool)
}

// New returns a Hub. reg receives the hub's metrics.
func New(cfg Config, a Authenticator, d DeliveryStore, reg prometheus.Registerer, log *slog.Logger) *Hub {
	cfg.defaults()
	h := &Hub{
		cfg: cfg, auth: a, deliveries: d, log: log, m: newMetrics(reg), now: time.Now,
		routes:    map[string]route{},
		replayers: map[string]protocol.Replayer{},
		byUser:    map[string]map[*conn]struct{}{},
		byAddr:    map[string]int{},
		relayLog:  rate.Sometimes{First: 1, Interval: time.Second},
		afterFunc: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
	}
	h.conns.Store(&[]*conn{})
	h.stats.start = h.now()
	h.routes["ping"] = route{model.RoleViewer, h.ping}
	h.routes["subscribe"] = route{model.RoleViewer, nil}   // handled by the connection
	h.routes["unsubscribe"] = route{model.RoleViewer, nil} // handled by the connection
	h.routes["ack"] = route{model.RoleViewer, nil}         // handled by the connection
	h.routes["resume"] = route{model.RoleViewer, nil}      // handled by the connection
	h.routes["auth"] = route{model.RoleViewer, nil}        // a new token for the open connection
	return h
}

// Handle registers fn for requests of type typ from users of role min or
// above. It must be called before the first Serve.
func (h *Hub) Handle(typ string, min model.Role, fn protocol.HandlerFunc) {
	if _, dup := h.routes[typ]; dup {
		panic("hub: duplicate handler for " + typ)
	}
	h.routes[typ] = route{min, fn}
}

func (h *Hub) ping(context.Context, protocol.Request) (protocol.Reply, error) {
	return protocol.Reply{Type: "pong"}, nil
}

// SetPresence registers l. It must be called before the first Serve.
func (h *Hub) SetPresence(l protocol.PresenceListener) { h.presence = l }

// Online reports whether user has at least one live connection.
func (h *Hub) Online(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byUser[user]) > 0
}

// register adds an authenticated connection. It refuses (with the reason
// for the metrics) once shutting down, or past the per-user and
// per-address connection caps.
func (h *Hub) register(c *conn) (ok bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return false, reasonShutdown
	case len(h.byUser[c.user]) >= h.cfg.MaxPerUser:
		return false, reasonTooManyForUser
	case c.addr != "" && h.byAddr[c.addr] >= h.cfg.MaxPerAddr:
		return false, reasonTooManyForAddr
	}
	if c.addr != "" {
		h.byAddr[c.addr]++
	}
	set := h.byUser[c.user]
	if set == nil {
		set = map[*conn]struct{}{}
		h.byUser[c.user] = set
		if h.presence != nil {
			h.presence.Online(c.user)
		}
	}
	set[c] = struct{}{}
	h.wg.Add(1)
	h.storeSnapshotLocked(append(h.snapshot(), c))
	return true, ""
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.addr != "" {
		if h.byAddr[c.addr]--; h.byAddr[c.addr] <= 0 {
			delete(h.byAddr, c.addr)
		}
	}
	if set := h.byUser[c.user]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.byUser, c.user)
			if h.presence != nil {
				h.presence.Offline(c.user)
			}
		}
	}
	old := h.snapshot()
	next := make([]*conn, 0, len(old))
	for _, o := range old {
		if o != c {
			next = append(next, o)
		}
	}
	h.storeSnapshotLocked(next)
}

func (h *Hub) snapshot() []*conn { return *h.conns.Load() }

func (h *Hub) storeSnapshotLocked(s []*conn) {
	// Always a fresh slice: readers may still range over the old one.
	cp := make([]*conn, len(s))
	copy(cp, s)
	h.conns.Store(&cp)
}

func (h *Hub) userConns(user string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*conn, 0, len(h.byUser[user]))
	for c := range h.byUser[user] {
		out = append(out, c)
	}
	return out
}

// PublishReadings sends each reading to every connection that wants it. It
// never blocks: it runs on the ingest path, after the readings are stored.
// Each reading is encoded once; the whole batch is one item in the send
// queue of each connection, shared by every connection that wants all of
// it.
func (h *Hub) PublishReadings(rs []model.Reading) {
	conns := h.snapshot()
	if len(conns) == 0 || len(rs) == 0 {
		return
	}
	msgs := make([][]byte, len(rs))
	for i, r := range rs {
		msgs[i] = encodeReading(r)
	}
	var queued int
	for _, c := range conns {
		f := c.filter.Load()
		item, itemRS := msgs, rs
		if f != allSensors {
			item, itemRS = nil, nil
			for i, r := range rs {
				if f.wants(r.SensorID) {
					item = append(item, msgs[i])
					itemRS = append(itemRS, r)
				}
			}
			if len(item) == 0 {
				continue
			}
		}
		if c.enqueueReadings(item, itemRS) {
			queued += len(item)
		}
	}
	h.m.messagesOut.WithLabelValues("reading").Add(float64(queued))
}

// resumeKey is the resume key of data, if it is a message a resume can
// replay (see model's ResumeKey methods).
func resumeKey(data any) string {
	if k, ok := data.(interface{ ResumeKey() string }); ok {
		return k.ResumeKey()
	}
	return ""
}

// Broadcast sends one message to every authenticated connection, on
// every instance (relay.go).
func (h *Hub) Broadcast(typ string, data any) error {
	msg, err := protocol.Encode(typ, nil, nil, data)
	if err != nil {
		return err
	}
	key := resumeKey(data)
	var queued float64
	for _, c := range h.snapshot() {
		if c.enqueueKeyed(msg, key) {
			queued++
		}
	}
	h.m.messagesOut.WithLabelValues(typ).Add(queued)
	h.relayFrame(Frame{Type: typ, All: true, Msg: msg, Key: key})
	return nil
}

// SendReliable stores a message for user and delivers it to every live
// connection of that user. Until one of them acks it, it is delivered again
// on each new connection of the user. The stored id is the message's
// top-level "id".
func (h *Hub) SendReliable(ctx context.Context, user, typ string, ref json.RawMessage, data any) error {
	return h.sendReliable(ctx, []string{user}, typ, ref, data)
}

// SendReliableToUsers is SendReliable for several users at once, stored in
// one statement; each user gets a message id of their own.
func (h *Hub) SendReliableToUsers(ctx context.Context, users []string, typ string, data any) error {
	return h.sendReliable(ctx, users, typ, nil, data)
}

func (h *Hub) sendReliable(ctx context.Context, users []string, typ string, ref json.RawMessage, data any) error {
	if len(users) == 0 {
		return nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("hub: encode %s: %w", typ, err)
	}
	ds := make([]model.Delivery, len(users))
	for i, u := range users {
		ds[i] = model.Delivery{User: u, Type: typ, Ref: ref, Data: raw}
	}
	ds, err = h.deliveries.InsertDeliveries(ctx, ds)
	if err != nil {
		h.m.reliableFailed.Add(float64(len(users)))
		return fmt.Errorf("hub: store %s for %d users: %w", typ, len(users), err)
	}
	key := resumeKey(data)
	var queued float64
	f := Frame{Type: typ, Key: key, Users: make([]string, len(ds)), Msgs: make([]json.RawMessage, len(ds))}
	for i, d := range ds {
		msg := encodeDelivery(d)
		f.Users[i], f.Msgs[i] = d.User, msg
		for _, c := range h.userConns(d.User) {
			if c.enqueueKeyed(msg, key) {
				queued++
			}
		}
	}
	h.m.messagesOut.WithLabelValues(typ).Add(queued)
	h.relayFrame(f)
	return nil
}

// SendToUsers sends one message, encoded once, to every live connection
// of the given users, on every instance (relay.go): users name every
// intended recipient, not only those connected here. It does not store
// the message: it is for what a client can reload over REST (chat,
// typing).
func (h *Hub) SendToUsers(users []string, typ string, data any) error {
	msg, err := h.sendLocal(users, typ, data)
	if err != nil {
		return err
	}
	h.relayFrame(Frame{Type: typ, Users: users, Msg: msg, Key: resumeKey(data)})
	return nil
}

// SendToLocalUsers is SendToUsers for this instance's connections only:
// for what every instance sends to its own connections itself (presence
// transitions, which each instance derives from the merged view).
func (h *Hub) SendToLocalUsers(users []string, typ string, data any) error {
	_, err := h.sendLocal(users, typ, data)
	return err
}

func (h *Hub) sendLocal(users []string, typ string, data any) ([]byte, error) {
	msg, err := protocol.Encode(typ, nil, nil, data)
	if err != nil {
		return nil, err
	}
	key := resumeKey(data)
	var queued float64
	for _, u := range users {
		for _, c := range h.userConns(u) {
			if c.enqueueKeyed(msg, key) {
				queued++
			}
		}
	}
	h.m.messagesOut.WithLabelValues(typ).Add(queued)
	return msg, nil
}

// encodeDelivery encodes a stored reliable message with its delivery id.
func encodeDelivery(d model.Delivery) []byte {
	b, err := protocol.Encode(d.Type, json.RawMessage(strconv.FormatInt(d.ID, 10)), d.Ref, d.Data)
	if err != nil {
		panic(err) // d.Data is already valid JSON from the store
	}
	return b
}

// Run keeps the per-minute statistics until ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			h.stats.sample(now)
		}
	}
}

// Shutdown refuses new connections, sends close 1001 to every client and
// waits until their handlers have returned or ctx ends; then it cuts the
// remaining sockets.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for _, c := range h.snapshot() {
		c.fail(protocol.CloseGoingAway, "server shutting down", reasonShutdown)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Closing the socket would do nothing: fasthttp ignores Close on a
		// hijacked connection until the handler returns. A past deadline
		// fails the blocked read and write instead. Holding h.mu keeps
		// every listed connection registered, so its Serve has not returned
		// and fasthttp has not recycled its net.Conn.
		h.mu.Lock()
		for _, c := range h.snapshot() {
			c.cutReadAt(time.Now())
			// On the net.Conn: the websocket's own SetWriteDeadline is
			// the writer goroutine's to call.
			_ = c.ws.NetConn().SetWriteDeadline(time.Now())
		}
		h.mu.Unlock()
		return errors.New("hub: shutdown: connections still open at deadline")
	}
}
