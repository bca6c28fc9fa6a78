package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/model"
)

// ReadingStore commits readings, all of a call in one transaction.
// InsertReadings must be idempotent on (sensor, metric, ts) and never
// overwrite: a redelivered reading counts as a duplicate (same value) or a
// conflict (another value), not a failure. A reading marked Receipt whose
// key is taken is not a duplicate: the store moves it to a free
// microsecond of its series and inserts it. Result.Fresh holds exactly the
// readings inserted, in input order; only those go on to the sinks.
// rs must not be modified.
type ReadingStore interface {
	InsertReadings(ctx context.Context, rs []model.Reading) (model.InsertResult, error)
}

// ReadingSink receives every committed batch, in commit order, from the
// pipeline goroutine. PublishReadings must not block (queue and return) and
// may keep rs but must not modify it: several sinks share the slice.
type ReadingSink interface {
	PublishReadings(rs []model.Reading)
}

// SeqSink is a ReadingSink that also hears of a committed batch that
// stored nothing new (every reading a redelivery): its seq is used up, and
// a sink that orders batches by seq (the backplane) must not wait for it.
// Called like PublishReadings.
type SeqSink interface {
	SkipSeq(seq int64)
}

// Config configures an Ingest. Zero values take the defaults below.
type Config struct {
	BrokerURL string   // tcp://host:1883, ssl://, ws://, wss://; user:password@ in the URL is used for auth
	ClientID  string   // stable across restarts: the broker keeps the session (and queues messages) under it
	Topics    []string // subscription filters, default ["sensors/#"]
	// ShareGroup, when set, subscribes to each topic as
	// $share/{ShareGroup}/{topic}: the broker gives each message to one
	// member of the group, so several instances ingest each reading once.
	// Empty: a plain subscription (every subscriber gets every message).
	ShareGroup string
	// Lead, when set, elects the one instance that ingests among several
	// that share ClientID's persistent session (serve backs it with a
	// PostgreSQL advisory lock): Run connects only during a term Lead
	// returns and stands by between terms. With it ShareGroup must be
	// empty: one plain persistent subscription, which the broker keeps
	// (and queues for) across its own restarts and across instances.
	Lead func(ctx context.Context) (Term, error)

	BatchSize     int           // flush at this many readings (default 5000)
	FlushInterval time.Duration // linger: wait this long after a batch's first message for more (default 0: group commit, commit as soon as the previous commit ends)
	QueueSize     int           // messages between the MQTT handler and the pipeline (default 10000)

	RetryMin time.Duration // backoff on store errors, first wait (default 100ms)
	RetryMax time.Duration // and longest wait (default 5s)

	CommitTimeout time.Duration // deadline of each insert attempt (default 10s)

	Admission Admission // which readings may reach the store; zero admits all
}

// Term is one period during which this instance ingests (Config.Lead).
type Term interface {
	// Lost is closed when the lead is lost: another instance may ingest
	// from then on.
	Lost() <-chan struct{}
	// Release gives the lead up; called once, when the term ends.
	Release()
}

// Defaults.
const (
	DefaultTopic         = "sensors/#"
	DefaultBatchSize     = 5000
	DefaultFlushInterval = 0 // group commit
	DefaultQueueSize     = 10000
	DefaultRetryMin      = 100 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
	DefaultCommitTimeout = 10 * time.Second

	defaultShutdownFlushTimeout = 5 * time.Second
)

// MQTT client settings.
const (
	keepAlive            = 30 * time.Second
	pingTimeout          = 10 * time.Second
	connectTimeout       = 10 * time.Second
	connectRetryInterval = 2 * time.Second  // first connection, fixed interval
	maxReconnectInterval = 10 * time.Second // reconnects back off from 1s to this
	subscribeTimeout     = 10 * time.Second
	disconnectQuiesce    = 250 // milliseconds, for acks still being written
	ackFenceFilter       = "watchroom-ingest/ack-fence"
	ackFenceTimeout      = 2 * time.Second
)

// Ingest subscribes to sensor topics and commits what arrives, in batches,
// acknowledging each message only after its readings are committed.
type Ingest struct {
	cfg    Config
	broker *url.URL
	pipe   *pipeline
	m      *metrics
	log    *slog.Logger
	queue  chan delivery

	started    atomic.Bool
	standby    atomic.Bool                 // with Config.Lead: waiting for a term; see Standby
	subscribed atomic.Bool                 // connected and subscribed; see Connected
	client     atomic.Pointer[mqtt.Client] // set once Run has built it

	connFailLog rate.Sometimes // connection failures: first one, then one a minute

	lastReceived atomic.Int64 // wall clock (ns) of the last message handed to enqueue; for leaveGroup

	now func() time.Time // the clock of receipt stamps; tests replace it before Run
}

// New checks cfg, fills in defaults and registers the metrics on reg (nil
// reg: not registered). Nothing connects until Run.
func New(cfg Config, st ReadingStore, sinks []ReadingSink, reg prometheus.Registerer, log *slog.Logger) (*Ingest, error) {
	if st == nil {
		return nil, errors.New("ingest: new: nil store")
	}
	u, err := url.Parse(cfg.BrokerURL)
	if err != nil {
		return nil, fmt.Errorf("ingest: new: broker URL: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("ingest: new: broker URL %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("ingest: new: broker URL %q has no host", u.Redacted())
	}
	if cfg.ClientID == "" {
		// MQTT 3.1.1 allows an empty client id only with a clean session,
		// and a clean session loses the messages sent while we are away.
		return nil, errors.New("ingest: new: client id is required (a persistent session needs a stable id)")
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = []string{DefaultTopic}
	}
	for _, f := range cfg.Topics {
		if err := validFilter(f); err != nil {
			return nil, fmt.Errorf("ingest: new: topic filter %q: %w", f, err)
		}
		if strings.HasPrefix(f, "$share/") && cfg.ShareGroup != "" {
			return nil, fmt.Errorf("ingest: new: topic filter %q is already shared; with a share group, list plain topics", f)
		}
	}
	if err := ValidShareGroup(cfg.ShareGroup); err != nil {
		return nil, fmt.Errorf("ingest: new: %w", err)
	}
	if cfg.Lead != nil && cfg.ShareGroup != "" {
		return nil, errors.New("ingest: new: an elected ingest has the session to itself; it takes no share group")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval < 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.RetryMax < cfg.RetryMin {
		return nil, fmt.Errorf("ingest: new: RetryMax %s is below RetryMin %s", cfg.RetryMax, cfg.RetryMin)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(reg)
	return &Ingest{
		cfg:         cfg,
		broker:      u,
		pipe:        newPipeline(cfg, st, sinks, m, log),
		m:           m,
		log:         log,
		queue:       make(chan delivery, cfg.QueueSize),
		connFailLog: rate.Sometimes{First: 1, Interval: time.Minute},
		now:         time.Now,
	}, nil
}

// Connected reports whether the client is connected to the broker and
// subscribed (for /readyz). Safe to call from any goroutine.
func (in *Ingest) Connected() bool {
	c := in.client.Load()
	return in.subscribed.Load() && c != nil && (*c).IsConnectionOpen()
}

// Standby reports whether this instance waits for the ingest lead
// (Config.Lead) while another one ingests: for /readyz, a standing-by
// instance is as ready as a connected one. Safe from any goroutine.
func (in *Ingest) Standby() bool { return in.standby.Load() }

// Run connects (retrying until the broker answers) and ingests until ctx
// is done. Then, with a share group, it leaves the group and drains what
// the broker had already sent (see leaveGroup); it stops taking messages,
// commits what is batched (bounded by a 5s timeout), acknowledges what was
// committed and disconnects. It returns nil on such a clean shutdown. With
// Config.Lead it does so during each term it wins, and stands by between
// them (runElected). Run may be called once.
func (in *Ingest) Run(ctx context.Context) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("ingest: run: already started")
	}
	if in.cfg.Lead != nil {
		return in.runElected(ctx)
	}
	in.m.leader.Set(1)
	return in.session(ctx)
}

// runElected ingests during every term Config.Lead grants and stands by
// between terms. A term ends when the lead is lost (the connection holding
// the lock died): the session stops as at a shutdown, what it committed is
// acknowledged, and what it had not is redelivered by the broker to the
// next holder of the session, whichever instance that is.
func (in *Ingest) runElected(ctx context.Context) error {
	for {
		in.standby.Store(true)
		term, err := in.cfg.Lead(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("ingest: lead: %w", err)
		}
		in.standby.Store(false)
		in.m.leader.Set(1)
		in.log.Info("ingest: this instance now ingests", "client_id", in.cfg.ClientID)
		tctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-term.Lost():
				cancel()
			case <-tctx.Done():
			}
		}()
		err = in.session(tctx)
		cancel()
		term.Release()
		in.m.leader.Set(0)
		if err != nil || ctx.Err() != nil {
			return err
		}
		in.log.Warn("ingest: lost the ingest lead; the instance that takes it over continues the session")
	}
}

// session is one MQTT session: connect, ingest until ctx is done, stop
// cleanly (see Run).
func (in *Ingest) session(ctx context.Context) error {
	// The pipeline's context: it ends with ctx, or in a share group once
	// the group is left and drained.
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	handler := func(_ mqtt.Client, msg mqtt.Message) { in.enqueue(pctx, msg) }
	opts := mqtt.NewClientOptions().
		AddBroker(in.cfg.BrokerURL).
		SetClientID(in.cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(keepAlive).
		SetPingTimeout(pingTimeout).
		SetConnectTimeout(connectTimeout).
		SetConnectRetry(true).
		SetConnectRetryInterval(connectRetryInterval).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectInterval).
		// Subscriptions are made in OnConnect on every connection; paho's
		// own resume of pending SUBSCRIBE packets would only duplicate them.
		SetResumeSubs(false).
		// Queued messages of the persistent session arrive right after
		// CONNACK, before our SUBSCRIBE returns and, as we subscribe without
		// a route (see onConnect), all messages reach this handler.
		SetDefaultPublishHandler(handler).
		SetOnConnectHandler(func(c mqtt.Client) { in.onConnect(ctx, c) }).
		SetConnectionLostHandler(in.onConnectionLost).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			in.log.Info("ingest: reconnecting to broker", "broker", in.broker.Redacted())
		}).
		SetConnectionNotificationHandler(in.onNotification)
	client := mqtt.NewClient(opts)
	in.client.Store(&client)

	in.log.Info("ingest: connecting to broker", "broker", in.broker.Redacted(), "client_id", in.cfg.ClientID, "topics", in.filters())
	// With ConnectRetry the token completes only once connected; progress
	// and failures are reported by the handlers.
	client.Connect()

	go func() {
		select {
		case <-ctx.Done():
		case <-pctx.Done():
			return
		}
		if in.cfg.ShareGroup != "" {
			in.leaveGroup(client)
		}
		stopPipeline()
	}()
	in.pipe.run(pctx, in.queue)

	in.setSubscribed(false)
	in.fenceAcks(client)
	client.Disconnect(disconnectQuiesce)
	// What the pipeline did not take stays unacknowledged: the broker
	// redelivers it to the session's next holder. It must not be taken by
	// this instance's next session (Config.Lead).
	left := 0
	for ; len(in.queue) > 0; left++ {
		<-in.queue
	}
	in.log.Info("ingest: stopped", "left_for_redelivery", left)
	return nil
}

// fenceAcks waits until the broker has processed every PUBACK sent so far,
// by a request the broker answers in order: an UNSUBSCRIBE of a filter we
// never subscribed (no side effect) and its UNSUBACK. Without it the last
// acks can be lost on a quick restart: Mosquitto 2.0 reads one packet per
// connection per loop iteration, and when the next instance connects with
// the same client id it closes the old connection with the unread PUBACKs
// still in the socket (seen in TestIngestRestartLosesNothing). Those
// messages would be redelivered; harmless thanks to the store's unique key,
// but not free, and a payload without "ts" would be stored twice.
func (in *Ingest) fenceAcks(client mqtt.Client) {
	if !client.IsConnectionOpen() {
		return // acks of a lost connection were dropped anyway
	}
	tok := client.Unsubscribe(ackFenceFilter)
	if !tok.WaitTimeout(ackFenceTimeout) {
		in.log.Warn("ingest: broker did not confirm the last acks before disconnect; they may be redelivered",
			"timeout", ackFenceTimeout)
		return
	}
	if err := tok.Error(); err != nil {
		in.log.Warn("ingest: broker did not confirm the last acks before disconnect; they may be redelivered", "err", err)
	}
}

// Leaving a share group at shutdown.
const (
	leaveTimeout = 2 * time.Second        // for the UNSUBACK
	drainQuiet   = 200 * time.Millisecond // no message for this long: drained
	drainMax     = 5 * time.Second        // the drain's bound
)

// leaveGroup unsubscribes from the shared filters, so that the broker
// gives the group's messages to the other members from now on, and waits
// until the messages it had sent us before are taken by the pipeline (the
// queue is empty and nothing arrived for drainQuiet; at most drainMax).
// Without it Mosquitto keeps assigning this client's session its share
// of the messages while it is away, and holds them until it returns
// (TestMosquittoSharedSubscriptionMemberDies): a rolling restart would
// delay readings, and a retired instance would keep them for good.
// Messages left unacknowledged all the same stay in the session and are
// delivered when the instance returns with its client id.
func (in *Ingest) leaveGroup(client mqtt.Client) {
	if !client.IsConnectionOpen() {
		return
	}
	tok := client.Unsubscribe(in.filters()...)
	if !tok.WaitTimeout(leaveTimeout) || tok.Error() != nil {
		in.log.Warn("ingest: could not leave the share group; the broker keeps this instance's share of readings until it returns",
			"group", in.cfg.ShareGroup, "err", tok.Error(), "timeout", leaveTimeout)
		return
	}
	start := time.Now()
	for time.Since(start) < drainMax {
		if len(in.queue) == 0 && time.Since(time.Unix(0, in.lastReceived.Load())) >= drainQuiet {
			in.log.Info("ingest: left the share group and drained what the broker had sent", "group", in.cfg.ShareGroup,
				"took", time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.log.Warn("ingest: left the share group but messages kept arriving; those not committed stay in this instance's session until it returns",
		"group", in.cfg.ShareGroup, "waited", drainMax)
}

// enqueue runs on paho's router goroutine (OrderMatters: one message at a
// time, in arrival order). It must not block for long: while it waits,
// paho reads nothing from the connection, keepalive replies included.
func (in *Ingest) enqueue(ctx context.Context, msg mqtt.Message) {
	in.m.received.Inc()
	d := delivery{msg: msg, received: in.now()}
	in.lastReceived.Store(time.Now().UnixNano())
	select {
	case in.queue <- d:
		return
	default:
	}
	// Cannot happen while the broker's in-flight window is below QueueSize
	// (see doc.go); if it does, wait rather than drop: a dropped message
	// would never be acked, and acks must go out in order.
	in.m.queueFull.Inc()
	select {
	case in.queue <- d:
	case <-ctx.Done():
		// Shutting down: left unacked, redelivered to the next session.
	}
}

// onConnect runs in its own goroutine after every (re)connection. It
// subscribes every time: the broker may have lost the session, and paho's
// ResumeSubs only replays SUBSCRIBE packets that were never acknowledged.
func (in *Ingest) onConnect(ctx context.Context, c mqtt.Client) {
	filters := make(map[string]byte, len(in.cfg.Topics))
	for _, t := range in.filters() {
		filters[t] = 1
	}
	backoff := time.Second
	for {
		if ctx.Err() != nil {
			return // shutting down: do not join the share group again
		}
		// A nil callback adds no route: every message goes to the default
		// handler exactly once. With a route per filter, paho would call
		// the handler once per matching filter for the same message.
		err := subscribe(c, filters)
		if ctx.Err() != nil {
			return // Run is shutting down and has cleared the state
		}
		if err == nil {
			in.setSubscribed(true)
			in.log.Info("ingest: connected and subscribed", "broker", in.broker.Redacted(), "topics", in.filters())
			return
		}
		if !c.IsConnectionOpen() {
			return // a reconnect will call onConnect again
		}
		in.log.Error("ingest: subscribe failed; retrying", "err", err, "topics", in.filters(), "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// filters are the subscription filters: the topics, each as
// $share/{group}/{topic} when a share group is set.
func (in *Ingest) filters() []string {
	if in.cfg.ShareGroup == "" {
		return in.cfg.Topics
	}
	out := make([]string, len(in.cfg.Topics))
	for i, t := range in.cfg.Topics {
		out[i] = "$share/" + in.cfg.ShareGroup + "/" + t
	}
	return out
}

// ValidShareGroup checks a share group name: "" (none) or one topic level
// without wildcards, as MQTT requires of a $share/{group}/ prefix.
func ValidShareGroup(g string) error {
	if strings.ContainsAny(g, "/+#") {
		return fmt.Errorf("share group %q: must not contain '/', '+' or '#'", g)
	}
	return nil
}

func subscribe(c mqtt.Client, filters map[string]byte) error {
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(subscribeTimeout) {
		return fmt.Errorf("ingest: subscribe: no SUBACK within %s", subscribeTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("ingest: subscribe: %w", err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for topic, qos := range st.Result() {
			if qos > 2 { // 0x80: refused, e.g. by an ACL
				return fmt.Errorf("ingest: subscribe: broker refused %q", topic)
			}
		}
	}
	return nil
}

// validFilter checks an MQTT topic filter as the broker would, so that a
// typo fails at startup rather than on every connection.
func validFilter(f string) error {
	if f == "" {
		return errors.New("empty")
	}
	segs := strings.Split(f, "/")
	for i, s := range segs {
		if strings.Contains(s, "#") && (s != "#" || i != len(segs)-1) {
			return errors.New("'#' must be the whole last segment")
		}
		if strings.Contains(s, "+") && s != "+" {
			return errors.New("'+' must be a whole segment")
		}
	}
	return nil
}

func (in *Ingest) onConnectionLost(_ mqtt.Client, err error) {
	in.setSubscribed(false)
	in.m.connLost.Inc()
	in.log.Warn("ingest: connection to broker lost; reconnecting, unacknowledged messages will be redelivered",
		"broker", in.broker.Redacted(), "err", err)
}

func (in *Ingest) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	if f, ok := n.(mqtt.ConnectionNotificationFailed); ok {
		in.connFailLog.Do(func() {
			in.log.Warn("ingest: cannot connect to broker; retrying (logged at most once a minute)",
				"broker", in.broker.Redacted(), "err", f.Reason)
		})
	}
}

func (in *Ingest) setSubscribed(ok bool) {
	in.subscribed.Store(ok)
	if ok {
		in.m.connected.Set(1)
	} else {
		in.m.connected.Set(0)
	}
}
