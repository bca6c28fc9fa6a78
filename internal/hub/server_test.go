package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
)

// This file holds the test server and client shared by the hub's tests: a
// real Fiber app on a free loopback port serving /ws through
// gofiber/contrib/websocket, real tokens from internal/auth, an in-memory
// DeliveryStore, and a fasthttp/websocket client that unwraps batches.

// waitFor bounds every "did it arrive" wait; nothing here asserts speed.
const waitFor = 5 * time.Second

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fakeStore is an in-memory DeliveryStore: ids increase, Ack deletes.
type fakeStore struct {
	mu      sync.Mutex
	next    int64
	pending map[int64]model.Delivery
}

func newFakeStore() *fakeStore { return &fakeStore{pending: map[int64]model.Delivery{}} }

func (s *fakeStore) InsertDeliveries(_ context.Context, ds []model.Delivery) ([]model.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]model.Delivery, len(ds))
	for i, d := range ds {
		s.next++
		d.ID = s.next
		s.pending[d.ID] = d
		out[i] = d
	}
	return out, nil
}

func (s *fakeStore) AckDeliveries(_ context.Context, recipient string, ids []int64) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked := []int64{}
	for _, id := range ids {
		if d, ok := s.pending[id]; ok && d.User == recipient {
			delete(s.pending, id)
			acked = append(acked, id)
		}
	}
	return acked, nil
}

func (s *fakeStore) PendingDeliveries(_ context.Context, recipient string, limit int) ([]model.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []model.Delivery
	for _, d := range s.pending {
		if d.User == recipient {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b model.Delivery) int { return int(a.ID - b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *fakeStore) count(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.pending {
		if d.User == user {
			n++
		}
	}
	return n
}

// tokenAuth is the hub's Authenticator in tests: real tokens, and the
// users in revoked have their sessions refused.
type tokenAuth struct {
	*auth.Tokens
	mu      sync.Mutex
	revoked map[string]bool
}

func (a *tokenAuth) Verify(ctx context.Context, token string) (auth.Claims, error) {
	c, err := a.Tokens.Verify(token)
	if err != nil {
		return auth.Claims{}, err
	}
	return c, a.Check(ctx, c)
}

func (a *tokenAuth) Check(_ context.Context, c auth.Claims) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked[c.User] {
		return fmt.Errorf("%w: test", auth.ErrRevoked)
	}
	return nil
}

func (a *tokenAuth) revoke(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[user] = true
}

// fakeClock is the hub's clock in tests that move time (token expiry).
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// lockedBuffer collects the hub's logs; they are printed only when a test
// fails, and logging after the test has ended is harmless.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// envOptions tune newEnv.
type envOptions struct {
	setup func(*Hub) // runs before the server starts (Handle, clock)
	// sndBuf, when set, caps the kernel send buffer of every accepted
	// socket, so a client that stops reading blocks the writer quickly.
	sndBuf int
}

type testEnv struct {
	t      *testing.T
	hub    *Hub
	store  *fakeStore
	reg    *prometheus.Registry
	tokens *auth.Tokens
	auth   *tokenAuth
	addr   string
	// serving counts upgrade handlers still inside Serve.
	serving atomic.Int64
}

// newEnv starts a hub behind a real Fiber server on a free port. Cleanup
// shuts the hub down and checks that every Serve call returned.
func newEnv(t *testing.T, cfg Config, opt envOptions) *testEnv {
	t.Helper()
	tokens, err := auth.NewTokens(testSecret, time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	env := &testEnv{t: t, store: newFakeStore(), reg: prometheus.NewRegistry(), tokens: tokens}
	if opt.sndBuf > 0 && cfg.SendBuffer == 0 {
		cfg.SendBuffer = opt.sndBuf
	}
	env.auth = &tokenAuth{Tokens: tokens, revoked: map[string]bool{}}
	env.hub = New(cfg, env.auth, env.store, env.reg, slog.New(slog.NewTextHandler(logs, nil)))
	if opt.setup != nil {
		opt.setup(env.hub)
	}

	ctx, cancel := context.WithCancel(context.Background())
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws", websocket.New(func(c *websocket.Conn) {
		env.serving.Add(1)
		defer env.serving.Add(-1)
		env.hub.Serve(ctx, c.Conn, ServeOptions{TokenInQuery: c.Query("token") != "", Addr: c.Query("addr")})
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opt.sndBuf > 0 {
		ln = &smallBufListener{Listener: ln, sndBuf: opt.sndBuf}
	}
	env.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()

	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		if err := env.hub.Shutdown(sctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// Unauthenticated handlers are not the hub's to wait for; they end
		// within AuthTimeout.
		env.eventually("every Serve call returned", func() bool { return env.serving.Load() == 0 })
		cancel()
		_ = app.ShutdownWithTimeout(waitFor)
		// Shutdown only closes listeners Serve has registered; a test
		// that ends at once can get here first.
		_ = ln.Close()
		<-served
		if t.Failed() {
			t.Logf("hub logs:\n%s", logs.String())
		}
	})
	return env
}

// smallBufListener shrinks the send buffer of accepted sockets.
type smallBufListener struct {
	net.Listener
	sndBuf int
}

func (l *smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.sndBuf)
	}
	return c, err
}

// eventually polls cond until it holds or waitFor passes.
func (e *testEnv) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *testEnv) token(user string, role model.Role) string {
	e.t.Helper()
	tok, _, err := e.tokens.Issue(user, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// counter returns the value of a counter of the env's registry, 0 when
// the series does not exist yet. An empty label reads an unlabelled counter.
func (e *testEnv) counter(name, label, value string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// dialOptions tune dial.
type dialOptions struct {
	query  string // appended to /ws
	rcvBuf int    // caps the client socket's receive buffer
	// noPong keeps the client from answering server pings.
	noPong bool
	// onPing is called for every server ping, from the client's reader.
	onPing func()
}

// msg is one server message as the client saw it. Messages of a batch
// frame are unwrapped, in order, and flagged.
type msg struct {
	Type  string          `json:"type"`
	ID    json.RawMessage `json:"id"`
	Ref   json.RawMessage `json:"ref"`
	Data  json.RawMessage `json:"data"`
	raw   []byte          // the message's own JSON (or text frame)
	batch bool            // arrived inside a batch frame
	frame int             // sequence number of the frame it came in
	text  bool            // a non-JSON text frame such as "pong"
}

func (m msg) errorCode() string {
	var d struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(m.Data, &d)
	return d.Code
}

// item is what the client's reader goroutine hands over: a message or the
// error that ended the connection.
type item struct {
	m   msg
	err error
}

type client struct {
	t    *testing.T
	ws   *fws.Conn
	wmu  sync.Mutex // the client's writes: tests may write from two goroutines
	once sync.Once
	in   chan item // closed when the reader goroutine ends
}

// dial opens a WebSocket to the env without authenticating.
func (e *testEnv) dial(opt dialOptions) *client {
	e.t.Helper()
	d := *fws.DefaultDialer
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if opt.rcvBuf > 0 {
			_ = c.(*net.TCPConn).SetReadBuffer(opt.rcvBuf)
		}
		return c, nil
	}
	ws, _, err := d.Dial("ws://"+e.addr+"/ws"+opt.query, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	c := &client{t: e.t, ws: ws, in: make(chan item, 1024)}
	if opt.noPong || opt.onPing != nil {
		ws.SetPingHandler(func(data string) error {
			if opt.onPing != nil {
				opt.onPing()
			}
			if opt.noPong {
				return nil
			}
			return ws.WriteControl(fws.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
	}
	e.t.Cleanup(func() {
		_ = ws.Close()
		c.start() // make sure the reader exists, then let it finish
		for range c.in {
		}
	})
	return c
}

// connect dials and authenticates as user, and checks auth_ok.
func (e *testEnv) connect(user string, role model.Role) *client {
	e.t.Helper()
	c := e.dial(dialOptions{})
	c.auth(e.token(user, role))
	c.expectType("auth_ok")
	return c
}

func (c *client) auth(token string) {
	c.t.Helper()
	c.send(map[string]any{"type": "auth", "data": map[string]string{"token": token}})
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendFrame(fws.TextMessage, b)
}

func (c *client) sendText(s string) { c.t.Helper(); c.sendFrame(fws.TextMessage, []byte(s)) }

func (c *client) sendFrame(kind int, b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := c.ws.WriteMessage(kind, b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// start runs the reader goroutine once; until then the client reads
// nothing (the slow consumer test relies on that).
func (c *client) start() { c.once.Do(func() { go c.readLoop() }) }

func (c *client) readLoop() {
	defer close(c.in)
	for frame := 0; ; frame++ {
		kind, b, err := c.ws.ReadMessage()
		if err != nil {
			c.in <- item{err: err}
			return
		}
		for _, m := range decodeFrame(kind, b) {
			m.frame = frame
			c.in <- item{m: m}
		}
	}
}

// decodeFrame turns one frame into its messages.
func decodeFrame(kind int, b []byte) []msg {
	if kind != fws.TextMessage || !json.Valid(b) {
		return []msg{{raw: b, text: true}}
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return []msg{{raw: b, text: true}}
	}
	m.raw = b
	if m.Type != "batch" {
		return []msg{m}
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(m.Data, &parts); err != nil {
		return []msg{m} // a malformed batch: the test sees type "batch"
	}
	out := make([]msg, 0, len(parts))
	for _, p := range parts {
		var pm msg
		if err := json.Unmarshal(p, &pm); err != nil {
			pm = msg{Type: "malformed"}
		}
		pm.raw, pm.batch = p, true
		out = append(out, pm)
	}
	return out
}

// next returns the next message, failing the test if the connection ends
// or nothing arrives in time.
func (c *client) next() msg {
	c.t.Helper()
	it, ok := c.nextItem()
	if !ok {
		c.t.Fatal("connection ended")
	}
	if it.err != nil {
		c.t.Fatalf("connection ended: %v", it.err)
	}
	return it.m
}

func (c *client) nextItem() (item, bool) {
	c.t.Helper()
	c.start()
	select {
	case it, ok := <-c.in:
		return it, ok
	case <-time.After(waitFor):
		c.t.Fatal("no message in time")
		return item{}, false
	}
}

func (c *client) expectType(typ string) msg {
	c.t.Helper()
	m := c.next()
	if m.Type != typ {
		c.t.Fatalf("got %s, want a %q message", m.raw, typ)
	}
	return m
}

// expectError reads the next message, which must be an error with code
// and ref (ref "" means no ref).
func (c *client) expectError(code, ref string) msg {
	c.t.Helper()
	m := c.expectType("error")
	if m.errorCode() != code || string(m.Ref) != ref {
		c.t.Fatalf("got %s, want error %q with ref %q", m.raw, code, ref)
	}
	return m
}

// roundTrip sends an app-level ping with id and returns every message
// that arrived before its pong: what the server had queued before it.
func (c *client) roundTrip(id int) []msg {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "id": id})
	var before []msg
	for {
		m := c.next()
		if m.Type == "pong" && string(m.Ref) == fmt.Sprint(id) {
			return before
		}
		before = append(before, m)
	}
}

// expectClose reads until the connection ends and returns the close code
// the server sent; messages before it are returned too.
func (c *client) expectClose() (int, []msg) {
	c.t.Helper()
	var before []msg
	for {
		it, ok := c.nextItem()
		if !ok {
			c.t.Fatal("reader ended without an error")
		}
		if it.err == nil {
			before = append(before, it.m)
			continue
		}
		var ce *fws.CloseError
		if errors.As(it.err, &ce) {
			return ce.Code, before
		}
		c.t.Fatalf("connection ended without a close frame: %v (after %d messages)", it.err, len(before))
	}
}

// expectClosedWith checks the close code and returns the messages before it.
func (c *client) expectClosedWith(code int) []msg {
	c.t.Helper()
	got, before := c.expectClose()
	if got != code {
		c.t.Fatalf("close code %d, want %d", got, code)
	}
	return before
}

func reading(sensor string, v float64) model.Reading {
	return model.Reading{SensorID: sensor, Metric: "temperature", Value: v, Unit: "°C", TS: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)}
}

// wireReading is a reading as a client decodes it.
type wireReading struct {
	SensorID string  `json:"sensor_id"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	TS       string  `json:"ts"`
}

func readingOf(t *testing.T, m msg) wireReading {
	t.Helper()
	if m.Type != "reading" {
		t.Fatalf("got %s, want a reading", m.raw)
	}
	var d wireReading
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("reading data %s: %v", m.Data, err)
	}
	return d
}

// close ends the connection the polite way: a close frame, then reading
// until the server's answer ends it.
func (c *client) close(t *testing.T) {
	t.Helper()
	c.wmu.Lock()
	err := c.ws.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.CloseNormalClosure, ""), time.Now().Add(waitFor))
	c.wmu.Unlock()
	if err != nil {
		t.Fatalf("client close: %v", err)
	}
	for {
		it, ok := c.nextItem()
		if !ok || it.err != nil {
			return
		}
	}
}
