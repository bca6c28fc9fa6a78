package backplane

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

// Sink receives the committed batches in seq order (the hub, alert
// detection): the contract of ingest.ReadingSink. One call may carry the
// readings of several batches, each reading with its batch's seq, in seq
// order. PublishReadings must not block and may keep rs but must not
// modify it: several sinks share it.
type Sink interface {
	PublishReadings(rs []model.Reading)
}

// Store reads the committed stream from PostgreSQL.
type Store interface {
	// LastReadingSeq is the highest seq handed to a batch so far.
	LastReadingSeq(ctx context.Context) (int64, error)
	// ReadingsInSeqRange returns up to limit readings of the batches from
	// to to, in seq order, with Seq set.
	ReadingsInSeqRange(ctx context.Context, from, to int64, limit int) ([]model.Reading, error)
}

// Config configures a Backplane. Zero values take the defaults noted.
type Config struct {
	BrokerURL string // the broker every instance shares
	ClientID  string // this instance's backplane client, e.g. "<MQTT client id>-backplane"
	Origin    string // this instance's id, in every message it publishes
	// Hold is how long a batch whose predecessor is missing waits before
	// the missing seqs are read from PostgreSQL (DefaultHold).
	Hold      time.Duration
	QueueSize int // batches (or parts) waiting for the orderer, and for the publisher (1024)
}

// Defaults.
const (
	DefaultHold      = 250 * time.Millisecond
	DefaultQueueSize = 1024
)

// Tuning that is not configuration.
const (
	// fillLimit bounds the readings of one gap fill; above a batch's
	// largest size (100,000 plus one message's), so one batch always fits.
	fillLimit      = 200_000
	fillTimeout    = 2 * time.Second
	publishTimeout = 5 * time.Second
	publishDrain   = 2 * time.Second // at shutdown, for what is still queued
	keepAlive      = 30 * time.Second
	subscribeWait  = 10 * time.Second
)

// Backplane carries committed batches of readings between instances
// through the broker and hands every committed batch, this instance's and
// the others', to the sinks in seq order. See doc.go.
type Backplane struct {
	cfg   Config
	st    Store
	sinks []Sink
	m     *metrics
	log   *slog.Logger

	in  chan part     // to Run's goroutine (the orderer)
	pub chan outBatch // to the publisher

	ord *orderer // Run's goroutine's, once Init has made it

	started    atomic.Bool
	subscribed atomic.Bool
	client     atomic.Pointer[mqtt.Client]

	dropLog rate.Sometimes // one line per second for drops of every kind
	fillLog rate.Sometimes

	ev *events // events.go

	// The clock of the hold; tests replace them before Run.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// outBatch is a batch of this instance's for the others.
type outBatch struct {
	seq      int64
	readings []model.Reading
}

// New checks cfg; nothing connects until Run. reg receives the metrics.
func New(cfg Config, st Store, sinks []Sink, reg prometheus.Registerer, log *slog.Logger) (*Backplane, error) {
	if st == nil {
		return nil, errors.New("backplane: new: nil store")
	}
	u, err := url.Parse(cfg.BrokerURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("backplane: new: broker URL without a host")
	}
	if cfg.ClientID == "" || cfg.Origin == "" {
		return nil, errors.New("backplane: new: client id and origin are required")
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultHold
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backplane{
		cfg: cfg, st: st, sinks: sinks, m: newMetrics(reg), log: log, ev: newEvents(cfg.QueueSize, reg),
		in:      make(chan part, cfg.QueueSize),
		pub:     make(chan outBatch, cfg.QueueSize),
		dropLog: rate.Sometimes{First: 1, Interval: time.Second},
		fillLog: rate.Sometimes{First: 1, Interval: time.Second},
		now:     time.Now,
		after:   time.After,
	}, nil
}

// Init reads where the committed stream stands: batches with a higher seq
// are delivered, in order, from then on. Call it once before Run, before
// ingest commits anything (serve calls it while building).
func (b *Backplane) Init(ctx context.Context) error {
	last, err := b.st.LastReadingSeq(ctx)
	if err != nil {
		return fmt.Errorf("backplane: init: %w", err)
	}
	b.ord = newOrderer(b.cfg.Hold, last+1)
	return nil
}

// PublishReadings takes a batch this instance committed (an ingest sink):
// it goes to the other instances and, through the same ordering as theirs,
// to this instance's sinks. It never blocks: a batch that finds a queue
// full is dropped there (counted) and filled from PostgreSQL.
func (b *Backplane) PublishReadings(rs []model.Reading) {
	if len(rs) == 0 {
		return
	}
	b.local(rs[0].Seq, rs)
}

// SkipSeq takes the seq of a batch this instance committed that stored
// nothing new (ingest.SeqSink): nobody waits for it then.
func (b *Backplane) SkipSeq(seq int64) { b.local(seq, nil) }

func (b *Backplane) local(seq int64, rs []model.Reading) {
	if seq < 1 {
		b.drop(reasonMalformed, "a local batch has no seq", nil)
		return
	}
	select {
	case b.in <- part{origin: b.cfg.Origin, seq: seq, count: 1, readings: rs}:
	default:
		b.drop(reasonQueueFull, "delivery queue full; the batch will be read from PostgreSQL", nil)
	}
	select {
	case b.pub <- outBatch{seq: seq, readings: rs}:
	default:
		b.drop(reasonPublishQueueFull, "publish queue full; the other instances will read the batch from PostgreSQL", nil)
	}
}

func (b *Backplane) drop(reason, msg string, err error) {
	b.m.dropped[reason].Inc()
	b.dropLog.Do(func() {
		b.log.Warn("backplane: "+msg+" (at most one line per second)", "reason", reason, "err", err)
	})
}

// Connected reports whether the client is connected and subscribed (for
// /readyz). Safe from any goroutine.
func (b *Backplane) Connected() bool {
	c := b.client.Load()
	return b.subscribed.Load() && c != nil && (*c).IsConnectionOpen()
}

// Run connects to the broker, subscribes to Topic and delivers batches in
// seq order until ctx is done; then it delivers what it holds, publishes
// what is queued (for up to 2 s) and disconnects. Init must have been
// called. Run may be called once.
func (b *Backplane) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("backplane: run: already started")
	}
	if b.ord == nil {
		return errors.New("backplane: run: Init was not called")
	}
	opts := mqtt.NewClientOptions().
		AddBroker(b.cfg.BrokerURL).
		SetClientID(b.cfg.ClientID).
		// Nothing to keep while away: what is missed is a gap, filled
		// from PostgreSQL when the next batch arrives.
		SetCleanSession(true).
		SetOrderMatters(true).
		SetKeepAlive(keepAlive).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10 * time.Second).
		SetResumeSubs(false).
		SetDefaultPublishHandler(b.receive).
		SetOnConnectHandler(func(c mqtt.Client) { b.onConnect(ctx, c) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			b.setSubscribed(false)
			b.log.Warn("backplane: connection to broker lost; reconnecting, batches missed meanwhile are read from PostgreSQL", "err", err)
		})
	if w := b.ev.will; w != nil {
		opts.SetBinaryWill(w.topic, w.payload, 1, false)
	}
	client := mqtt.NewClient(opts)
	b.client.Store(&client)
	client.Connect()
	eventsDone, eventsStopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(eventsStopped)
		b.publishEvents(client, eventsDone)
	}()

	published := make(chan struct{})
	go func() {
		defer close(published)
		b.publishLoop(ctx, client)
	}()
	b.loop(ctx)
	<-published
	close(eventsDone)
	<-eventsStopped
	for len(b.ev.out) > 0 {
		<-b.ev.out
		b.dropEvent(eventShutdown, nil)
	}
	// A clean DISCONNECT does not publish the will: say it ourselves.
	if w := b.ev.will; w != nil && client.IsConnectionOpen() {
		client.Publish(w.topic, 1, false, w.payload).WaitTimeout(publishDrain)
	}
	b.setSubscribed(false)
	client.Disconnect(250)
	return nil
}

func (b *Backplane) setSubscribed(ok bool) {
	b.subscribed.Store(ok)
	if ok {
		b.m.connected.Set(1)
	} else {
		b.m.connected.Set(0)
	}
}

// onConnect subscribes, every connection (the session is clean).
func (b *Backplane) onConnect(ctx context.Context, c mqtt.Client) {
	wait := time.Second
	for ctx.Err() == nil && c.IsConnectionOpen() {
		// nil: every message to the default handler (receive).
		tok := c.SubscribeMultiple(map[string]byte{Topic: 1, EventsTopic + "#": 1}, nil)
		err := tok.Error()
		if !tok.WaitTimeout(subscribeWait) {
			err = errors.New("no SUBACK")
		} else if st, ok := tok.(*mqtt.SubscribeToken); ok && err == nil && (st.Result()[Topic] > 2 || st.Result()[EventsTopic+"#"] > 2) {
			err = errors.New("refused by the broker (its ACL?)")
		}
		if err == nil {
			b.setSubscribed(true)
			b.log.Info("backplane: connected and subscribed", "topic", Topic, "events", EventsTopic+"#", "client_id", b.cfg.ClientID)
			for _, fn := range b.ev.onConnect {
				fn()
			}
			return
		}
		b.log.Error("backplane: subscribe failed; retrying", "topic", Topic, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// receive runs on paho's router goroutine: decode and queue, never block.
func (b *Backplane) receive(_ mqtt.Client, msg mqtt.Message) {
	if strings.HasPrefix(msg.Topic(), EventsTopic) {
		b.receiveEvent(msg)
		return
	}
	p, err := decode(msg.Payload())
	if err != nil {
		b.drop(reasonMalformed, "received message dropped", err)
		return
	}
	if p.origin == b.cfg.Origin {
		return // our own, delivered locally already
	}
	b.m.received.Inc()
	select {
	case b.in <- p:
	default:
		b.drop(reasonQueueFull, "delivery queue full; the batch will be read from PostgreSQL", nil)
	}
}

// loop is Run's goroutine: it owns the orderer.
func (b *Backplane) loop(ctx context.Context) {
	for {
		var due <-chan time.Time
		if d, ok := b.ord.deadline(); ok {
			due = b.after(d.Sub(b.now()))
		}
		select {
		case <-ctx.Done():
			for {
				select {
				case p := <-b.in:
					b.add(p)
					continue
				default:
				}
				break
			}
			b.deliver(b.ord.flush())
			return
		case p := <-b.in:
			b.add(p)
		case <-due:
			b.fillGaps(ctx)
		}
	}
}

func (b *Backplane) add(p part) {
	out, stale := b.ord.add(p, b.now())
	if stale {
		b.m.dropped[reasonStale].Inc() // a redelivery or a batch read from PostgreSQL first: expected, not logged
		return
	}
	b.deliver(out)
}

// deliver hands the batches released together to the sinks in one call,
// their readings in seq order. After a wait (a batch held back by a
// missing one, or a gap filled) many batches are released at once; one
// by one, each would be an item in every connection's send queue, and a
// burst of them would pass the hub's high-water mark and thin the
// readings of clients that keep up. Sinks take readings of several
// batches in one call, each reading with its own seq.
func (b *Backplane) deliver(ds []delivery) {
	var rs []model.Reading // the only batch with readings, or all of them joined
	n, batches := 0, 0
	for _, d := range ds {
		b.m.delivered.Inc()
		if d.filled {
			b.m.gapReadings.Add(float64(len(d.readings)))
		}
		if len(d.readings) > 0 {
			n += len(d.readings)
			batches++
			rs = d.readings
		}
	}
	if n == 0 {
		return
	}
	if batches > 1 {
		rs = make([]model.Reading, 0, n)
		for _, d := range ds {
			rs = append(rs, d.readings...)
		}
	}
	for _, s := range b.sinks {
		s.PublishReadings(rs)
	}
}

// fillGaps reads the missing seqs below the highest pending one from
// PostgreSQL and delivers everything up to it. A failed read skips them
// (counted): clients get those readings by resume or over REST.
func (b *Backplane) fillGaps(ctx context.Context) {
	for {
		from, to, ok := b.ord.missing()
		if !ok {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, fillTimeout)
		rows, err := b.st.ReadingsInSeqRange(fctx, from, to, fillLimit+1)
		cancel()
		upTo := to
		if err != nil {
			if ctx.Err() != nil {
				return // shutting down: flush delivers what is pending
			}
			b.m.fillErrors.Inc()
			b.fillLog.Do(func() {
				b.log.Warn("backplane: could not read missing batches from PostgreSQL; skipped (at most one line per second)",
					"from_seq", from, "to_seq", to, "err", err)
			})
			rows = nil
		} else if len(rows) > fillLimit {
			// Cut before the last seq read, which may be incomplete; the
			// next round reads from there.
			last := rows[fillLimit].Seq
			for len(rows) > 0 && rows[len(rows)-1].Seq == last {
				rows = rows[:len(rows)-1]
			}
			upTo = last - 1
		}
		out, gaps, filled := b.ord.fill(rows, upTo, b.now())
		b.m.gaps.Add(float64(gaps))
		b.m.gapsFilled.Add(float64(filled))
		if gaps > 0 {
			b.log.Debug("backplane: filled a gap from PostgreSQL", "from_seq", from, "to_seq", upTo, "missing", gaps, "with_readings", filled)
		}
		b.deliver(out)
	}
}

// publishLoop publishes this instance's batches, in commit order, until
// ctx is done, then what is still queued for up to publishDrain.
func (b *Backplane) publishLoop(ctx context.Context, client mqtt.Client) {
	for {
		select {
		case ob := <-b.pub:
			b.publish(client, ob, publishTimeout)
		case <-ctx.Done():
			end := time.Now().Add(publishDrain)
			for time.Now().Before(end) {
				select {
				case ob := <-b.pub:
					b.publish(client, ob, time.Until(end))
				default:
					return
				}
			}
			return
		}
	}
}

func (b *Backplane) publish(client mqtt.Client, ob outBatch, wait time.Duration) {
	msgs, err := encode(b.cfg.Origin, ob.seq, ob.readings)
	if err != nil {
		b.drop(reasonPublishFailed, "could not encode a batch", err)
		return
	}
	for _, m := range msgs {
		tok := client.Publish(Topic, 1, false, m)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.drop(reasonPublishFailed, "the broker did not confirm a published batch; the others will read it from PostgreSQL", tok.Error())
			return
		}
		b.m.published.Inc()
	}
}
