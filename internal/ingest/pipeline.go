package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/backoff"
	"github.com/watchroom/watchroom/internal/model"
)

// message is what the pipeline needs of an MQTT message; paho's
// mqtt.Message satisfies it, and tests use a fake.
type message interface {
	Topic() string
	Payload() []byte
	Ack()
}

// delivery is a message as queued by the MQTT handler, with the time it
// was received: readings without "ts" are stamped with it, not with the
// time the pipeline gets to them, which can be much later while the store
// is down.
type delivery struct {
	msg      message
	received time.Time
}

// pipeline turns queued messages into committed batches, in two stages
// that overlap: the receiver (the goroutine that calls run) takes
// messages, decodes, admits and stamps them into the next batch while the
// committer (a goroutine of run's) commits the previous one, acks it and
// hands it to the sinks. Fields are owned by one stage each, as marked; no
// field needs a lock.
type pipeline struct {
	store ReadingStore
	sinks []ReadingSink
	m     *metrics
	log   *slog.Logger

	batchSize int
	// flushInterval is how long a batch lingers for more messages once the
	// committer is idle; 0 (the default) hands it over at once: group
	// commit.
	flushInterval   time.Duration
	retryMin        time.Duration
	retryMax        time.Duration
	commitTimeout   time.Duration
	shutdownTimeout time.Duration

	// after starts the linger timer; tests inject a clock.
	after func(time.Duration) <-chan time.Time

	// The receiver's.
	stamps    *stamper
	adm       *admitter
	rejectLog map[string]*rate.Sometimes // one log line per reason per second
	cur       *batch                     // the batch being filled

	// The committer's.
	conflictLog rate.Sometimes // one line per second
	restampLog  rate.Sometimes // one line per minute
	refusedLog  rate.Sometimes // one line per minute
}

// batch is every message taken from the queue for one commit, in arrival
// order (rejected ones too: they carry no readings but still need their
// ack in order), and the readings they carried. It belongs to the receiver
// until it is handed to the committer.
type batch struct {
	msgs     []message
	readings []model.Reading
	// failed: an attempt to commit it ended in an error (a timeout, a
	// lost connection, a shutdown) whose commit may have gone through.
	// A later attempt then finds those readings stored, and they must be
	// pushed all the same: nobody has seen them (see ownRepeats).
	failed bool
}

func (p *pipeline) newBatch() *batch {
	return &batch{readings: make([]model.Reading, 0, min(p.batchSize, 1024))}
}

// full reports whether b may take no more messages. Counting messages too
// bounds a batch of rejected messages.
func (p *pipeline) full(b *batch) bool {
	return len(b.readings) >= p.batchSize || len(b.msgs) >= p.batchSize
}

func newPipeline(cfg Config, st ReadingStore, sinks []ReadingSink, m *metrics, log *slog.Logger) *pipeline {
	p := &pipeline{
		store:           st,
		sinks:           sinks,
		m:               m,
		log:             log,
		batchSize:       cfg.BatchSize,
		flushInterval:   cfg.FlushInterval,
		retryMin:        cfg.RetryMin,
		retryMax:        cfg.RetryMax,
		commitTimeout:   cfg.CommitTimeout,
		shutdownTimeout: defaultShutdownFlushTimeout,
		stamps:          newStamper(),
		adm:             newAdmitter(cfg.Admission, backoff.Policy{Min: cfg.RetryMin, Max: cfg.RetryMax}, m, log),
		rejectLog:       map[string]*rate.Sometimes{},
		conflictLog:     rate.Sometimes{First: 1, Interval: time.Second},
		restampLog:      rate.Sometimes{First: 1, Interval: time.Minute},
		refusedLog:      rate.Sometimes{First: 1, Interval: time.Minute},
		after:           time.After,
	}
	p.cur = p.newBatch()
	for _, r := range rejectReasons() {
		p.rejectLog[r] = &rate.Sometimes{First: 1, Interval: time.Second}
	}
	return p
}

// run takes messages from in until ctx is done, then commits what was
// taken with a fresh context bounded by shutdownTimeout and returns.
// Messages left in the queue, and batches that could not be committed, are
// not acknowledged: the broker redelivers them to the next session.
//
// Group commit: the receiver hands its batch to the committer as soon as
// the committer is idle (after flushInterval, when set), or waits while the
// batch is full. So at low load a message is committed alone, at once, and
// under load batches grow by themselves to what arrives during one commit.
// Batches are handed over, committed and acked one at a time, in order:
// acks stay in arrival order, each after the commit that holds it.
func (p *pipeline) run(ctx context.Context, in <-chan delivery) {
	// Admission needs the stored series before the first message, or the
	// backlog of a restart would count them all as new.
	if p.adm.seed(ctx) != nil {
		return // shutting down; nothing was taken
	}
	// A new session's batch: what an earlier one (an earlier term of an
	// elected ingest) left was flushed or is the broker's to redeliver.
	p.cur = p.newBatch()
	handoff := make(chan *batch) // unbuffered: a send succeeds only when the committer is idle
	left := make(chan *batch, 1) // the committer's batch it could not commit before ctx ended
	go p.commitLoop(ctx, handoff, left)

	var due <-chan time.Time // the linger deadline; nil when none is running
	lingered := false        // the current batch's linger has passed (or there is none)
	for {
		// Checked first so that a ready queue cannot win the select below
		// against a cancelled context.
		if ctx.Err() != nil {
			close(handoff)
			p.shutdown(ctx, <-left)
			return
		}
		take, give := in, (chan *batch)(nil)
		if p.full(p.cur) {
			take = nil // back-pressure: the queue fills, then paho stops reading
		}
		if len(p.cur.msgs) > 0 && (lingered || p.full(p.cur)) {
			give = handoff
		}
		select {
		case <-ctx.Done():
		case d := <-take:
			p.add(ctx, p.cur, d.msg, d.received)
			if len(p.cur.msgs) == 1 {
				if p.flushInterval > 0 {
					due, lingered = p.after(p.flushInterval), false
				} else {
					lingered = true
				}
			}
		case <-due:
			due, lingered = nil, true
		case give <- p.cur:
			p.cur, due, lingered = p.newBatch(), nil, false
		}
	}
}

// commitLoop is the committer: it commits the batches of handoff in order
// until handoff is closed or ctx ends; a batch it could not commit because
// ctx ended goes to left (nil if none), for shutdown.
func (p *pipeline) commitLoop(ctx context.Context, handoff <-chan *batch, left chan<- *batch) {
	for b := range handoff {
		if !p.flush(ctx, b) {
			// ctx ended. The receiver's handoff sends now block and lose
			// to ctx.Done, so no later batch can slip past this one.
			left <- b
			return
		}
	}
	left <- nil
}

// add decodes msg into the batch and admits its readings (see Admission).
// A rejected message is counted, logged at a bounded rate and kept for its
// ack: it can never become valid, and an unacknowledged message would be
// redelivered forever. Retained messages are dropped the same way (see
// ReasonRetained). If ctx ends while the device registry cannot answer,
// msg is left out of the batch, unacknowledged: the broker redelivers it.
func (p *pipeline) add(ctx context.Context, b *batch, msg message, received time.Time) {
	b.msgs = append(b.msgs, msg)
	if r, ok := msg.(interface{ Retained() bool }); ok && r.Retained() {
		p.m.rejected[ReasonRetained].Inc()
		p.rejectLog[ReasonRetained].Do(func() {
			p.log.Debug("ingest: retained message ignored (at most one line per second)", "topic", clip(msg.Topic()))
		})
		return
	}
	rs, err := Decode(msg.Topic(), msg.Payload(), received)
	if err == nil {
		reason, err := p.adm.admit(ctx, rs, received)
		if err != nil {
			b.msgs = b.msgs[:len(b.msgs)-1]
			return
		}
		if reason != "" {
			p.reject(reason, msg, fmt.Errorf("sensor %q: %s", clip(rs[0].SensorID), admissionText[reason]))
			return
		}
		for i := range rs {
			if rs[i].Receipt {
				rs[i].TS = p.stamps.stamp(rs[i].SensorID, rs[i].Metric, received)
			}
		}
		b.readings = append(b.readings, rs...)
		return
	}
	var rej *RejectError
	if !errors.As(err, &rej) { // Decode returns nothing else
		rej = &RejectError{Reason: ReasonMalformedJSON, Err: err}
	}
	p.reject(rej.Reason, msg, rej.Err)
}

// admissionText explains the admission reasons in the log.
var admissionText = map[string]string{
	ReasonUnregistered:     "not a registered device (WATCHROOM_SENSORS=registered)",
	ReasonLookupLimited:    "unknown ids are being looked up faster than the registry budget; not checked",
	ReasonNewSeriesLimited: "new series are being created faster than WATCHROOM_NEW_SERIES_RATE allows",
}

// reject counts a rejected message and logs it, at most once per reason
// per second.
func (p *pipeline) reject(reason string, msg message, err error) {
	p.m.rejected[reason].Inc()
	p.rejectLog[reason].Do(func() {
		p.log.Warn("ingest: message rejected (at most one line per reason per second)",
			"reason", reason, "topic", clip(msg.Topic()), "payload_bytes", len(msg.Payload()), "err", err)
	})
}

// flush commits b, retrying store errors with exponential backoff and
// jitter until it succeeds or ctx is done. Each attempt has its own
// deadline (commitTimeout): a database that stops answering without
// closing the connection would otherwise hold the attempt forever, with
// nothing logged. Only after the commit are b's messages acknowledged, in
// arrival order, and the readings handed to the sinks. While it retries
// nothing is acknowledged and the receiver fills at most one more batch,
// so the broker stops sending once its in-flight window is full: that is
// the back-pressure. It reports whether b was committed. Called by the
// committer, and by shutdown once the committer has ended.
func (p *pipeline) flush(ctx context.Context, b *batch) bool {
	if len(b.msgs) == 0 {
		return true
	}
	var res model.InsertResult
	if len(b.readings) > 0 {
		start := time.Now()
		backoff := p.retryMin
		for attempt := 1; ; attempt++ {
			// Not cut by a shutdown: an attempt under way finishes (or
			// times out). A commit cut off may have gone through unseen,
			// and the retry would store its receipt-stamped readings twice.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.commitTimeout)
			r, err := p.store.InsertReadings(actx, b.readings)
			timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
			cancel()
			if err == nil {
				res = r
				break
			}
			b.failed = true
			if ctx.Err() != nil {
				return false // shutting down, not a store failure; see shutdown
			}
			reason, msg := FlushError, "ingest: insert readings failed; retrying, nothing is acknowledged meanwhile"
			if timedOut {
				// The outcome of a commit cut off by the deadline is unknown:
				// the retry finds its readings stored if it went through, and
				// receipt-stamped ones are then stored twice (see doc.go).
				reason, msg = FlushTimeout, "ingest: insert readings timed out; retrying, nothing is acknowledged meanwhile"
			}
			p.m.flushErrors[reason].Inc()
			wait := jitter(backoff)
			p.log.Warn(msg, "err", err, "timeout", p.commitTimeout,
				"attempt", attempt, "readings", len(b.readings), "messages", len(b.msgs), "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			backoff = min(2*backoff, p.retryMax)
		}
		p.m.flushSeconds.Observe(time.Since(start).Seconds())
		p.m.batchSize.Observe(float64(len(b.readings)))
		p.count(res)
	}
	for _, msg := range b.msgs {
		msg.Ack()
	}
	// Only new readings go on: a redelivered one was pushed already. Sinks
	// may keep the slice (the hub queues it, and Fresh may be b.readings
	// itself): every batch has its own.
	push := res.Fresh
	if b.failed {
		push = ownRepeats(b.readings, res)
	}
	if len(push) > 0 {
		for _, s := range p.sinks {
			s.PublishReadings(push)
		}
	} else if res.Seq > 0 {
		for _, s := range p.sinks {
			if ss, ok := s.(SeqSink); ok {
				ss.SkipSeq(res.Seq)
			}
		}
	}
	clear(b.msgs) // drop the references so acked payloads can be collected
	b.msgs = b.msgs[:0]
	return true
}

// count records what the store made of a committed batch. A conflict (a
// key stored with another value) is counted and logged at a bounded rate
// with both values; the stored value stays. Readings refused as past
// retention are counted and logged at a bounded rate; they are
// acknowledged like the rest (a redelivery would be refused again).
func (p *pipeline) count(res model.InsertResult) {
	p.m.ingested.Add(float64(len(res.Fresh)))
	p.m.duplicate.Add(float64(res.Duplicates))
	p.m.restamped.Add(float64(res.Restamped))
	if n := len(res.Conflicts); n > 0 {
		p.m.conflict.Add(float64(n))
		c := res.Conflicts[0]
		p.conflictLog.Do(func() {
			p.log.Warn("ingest: reading conflicts with the stored one; the stored value stays (at most one line per second)",
				"sensor", c.Reading.SensorID, "metric", c.Reading.Metric, "ts", c.Reading.TS.Format(time.RFC3339Nano),
				"stored_value", c.Stored, "offered_value", c.Reading.Value, "conflicts_in_batch", n)
		})
	}
	if n := len(res.PastRetention); n > 0 {
		p.m.refused.Add(float64(n))
		r := res.PastRetention[0]
		p.refusedLog.Do(func() {
			p.log.Warn("ingest: readings older than the raw horizon not stored: retention removed the raw readings of their minute or hour, "+
				"so a repeat cannot be told from a new reading (a device that buffered for longer than WATCHROOM_RETENTION_RAW; at most one line per minute)",
				"sensor", r.SensorID, "metric", r.Metric, "ts", r.TS.Format(time.RFC3339Nano),
				"raw_horizon", res.RawHorizon.Format(time.RFC3339), "refused_in_batch", n)
		})
	}
	if res.Restamped > 0 {
		p.restampLog.Do(func() {
			p.log.Info("ingest: readings without ts found their receipt stamp taken and were moved to a free microsecond "+
				"(a restart with the clock behind, or another instance; at most one line per minute)", "readings", res.Restamped)
		})
	}
}

// ownRepeats is what to push for a batch whose earlier commit attempt
// failed: the fresh readings, and also the ones the store found already
// there with the same value, which that attempt may have committed
// without anyone pushing them (a commit that timed out or was cut by the
// shutdown after it went through). A true redelivery among them is pushed
// a second time; clients drop it by key. Conflicts and readings refused
// as past retention stay out, and so do receipt-stamped readings (see
// below).
func ownRepeats(readings []model.Reading, res model.InsertResult) []model.Reading {
	if len(res.Fresh) == len(readings) {
		return res.Fresh
	}
	skip := make(map[string]struct{}, len(res.Fresh)+len(res.Conflicts))
	for _, r := range res.Fresh {
		skip[r.ResumeKey()] = struct{}{}
	}
	for _, c := range res.Conflicts {
		skip[c.Reading.ResumeKey()] = struct{}{}
	}
	for _, r := range res.PastRetention {
		skip[r.ResumeKey()] = struct{}{}
	}
	out := append([]model.Reading(nil), res.Fresh...)
	for _, r := range readings {
		if r.Receipt {
			// Never found "already stored": its key is ours, and a taken
			// one moves it to a free microsecond (it is in Fresh then).
			continue
		}
		if _, ok := skip[r.ResumeKey()]; !ok {
			// Stored under the failed attempt's seq, which is below this
			// one's and was never pushed: this seq keeps a client's resume
			// cursor from replaying them again.
			r.Seq = res.Seq
			out = append(out, r)
		}
	}
	return out
}

// shutdown makes a last attempt to commit, in order, the committer's
// unfinished batch (left, may be nil) and the receiver's, with a fresh
// context: ctx is already done, but what was received should not wait for
// the next session if the store can take it now. The committer has ended.
func (p *pipeline) shutdown(ctx context.Context, left *batch) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.shutdownTimeout)
	defer cancel()
	for _, b := range []*batch{left, p.cur} {
		if b == nil || len(b.msgs) == 0 {
			continue
		}
		if !p.flush(fctx, b) {
			// A later batch must not be acked before this one.
			msgs, readings := len(b.msgs), len(b.readings)
			if b != p.cur {
				msgs, readings = msgs+len(p.cur.msgs), readings+len(p.cur.readings)
			}
			p.log.Error("ingest: final flush failed; the broker will redeliver these messages to the next session",
				"messages", msgs, "readings", readings, "timeout", p.shutdownTimeout)
			return
		}
	}
}

// jitter returns a duration in [d/2, d] ("equal jitter"): spread out so
// several instances do not hammer a recovering database in step, yet never
// much shorter than the backoff asks for.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
