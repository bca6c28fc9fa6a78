package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// events records, in order, what the pipeline did: "insert:N", "ack:ID",
// "publish:N". Safe for concurrent use.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// acks returns the ids of acked messages in ack order.
func (e *events) acks() []int {
	var ids []int
	for _, s := range e.all() {
		var id int
		if _, err := fmt.Sscanf(s, "ack:%d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

type fakeMsg struct {
	id      int
	topic   string
	payload []byte
	ev      *events
}

func (m *fakeMsg) Topic() string   { return m.topic }
func (m *fakeMsg) Payload() []byte { return m.payload }
func (m *fakeMsg) Ack()            { m.ev.add(fmt.Sprintf("ack:%d", m.id)) }

// pipeStore is a ReadingStore that fails its first `failures` calls.
type pipeStore struct {
	ev *events

	mu       sync.Mutex
	hangs    int // the first calls wait for their context to end, as on a hung database
	failures int
	calls    int
	batches  [][]model.Reading
	fresh    func(rs []model.Reading) []model.Reading    // readings reported new; default all
	result   func(rs []model.Reading) model.InsertResult // overrides fresh
}

func (s *pipeStore) InsertReadings(ctx context.Context, rs []model.Reading) (model.InsertResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.hangs {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		s.ev.add("insert-hung")
		return model.InsertResult{}, fmt.Errorf("read: %w", ctx.Err())
	}
	if s.calls <= s.failures || s.failures < 0 {
		s.ev.add("insert-failed")
		return model.InsertResult{}, errors.New("database is down")
	}
	s.batches = append(s.batches, slices.Clone(rs))
	s.ev.add(fmt.Sprintf("insert:%d", len(rs)))
	if s.result != nil {
		return s.result(rs), nil
	}
	if s.fresh != nil {
		fresh := s.fresh(rs)
		return model.InsertResult{Fresh: fresh, Duplicates: len(rs) - len(fresh)}, nil
	}
	return model.InsertResult{Fresh: rs}, nil
}

func (s *pipeStore) snapshot() (calls int, batches [][]model.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, slices.Clone(s.batches)
}

type pipeSink struct {
	name string
	ev   *events
	mu   sync.Mutex
	got  []model.Reading
}

func (s *pipeSink) PublishReadings(rs []model.Reading) {
	s.mu.Lock()
	s.got = append(s.got, rs...)
	s.mu.Unlock()
	s.ev.add(fmt.Sprintf("publish-%s:%d", s.name, len(rs)))
}

type pipeHarness struct {
	ev     *events
	store  *pipeStore
	sink   *pipeSink
	m      *metrics
	in     chan delivery
	cancel context.CancelFunc
	done   chan struct{}
	nextID int
}

func startPipeline(t *testing.T, cfg Config, store *pipeStore, tune func(*pipeline)) *pipeHarness {
	t.Helper()
	ev := &events{}
	if store == nil {
		store = &pipeStore{}
	}
	store.ev = ev
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Hour
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 4*time.Millisecond
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = time.Minute
	}
	m := newMetrics(prometheus.NewRegistry())
	sink := &pipeSink{name: "a", ev: ev}
	p := newPipeline(cfg, store, []ReadingSink{sink}, m, slog.New(slog.DiscardHandler))
	if tune != nil {
		tune(p)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h := &pipeHarness{ev: ev, store: store, sink: sink, m: m, in: make(chan delivery, 10000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		p.run(ctx, h.in)
	}()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// send queues one message and returns its id.
func (h *pipeHarness) send(topic, payload string) int {
	h.nextID++
	h.in <- delivery{msg: &fakeMsg{id: h.nextID, topic: topic, payload: []byte(payload), ev: h.ev}, received: testNow}
	return h.nextID
}

// sendReadings queues n valid single-reading messages.
func (h *pipeHarness) sendReadings(n int) {
	for range n {
		h.send("sensors/s1/m"+fmt.Sprint(h.nextID+1), "1")
	}
}

func (h *pipeHarness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("pipeline did not stop within 10s")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantEvents waits until ev holds as many events as want, then compares
// them: the sinks get a batch after its acks, so waiting for the acks alone
// can look before the publish.
func wantEvents(t *testing.T, ev *events, want []string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events", len(want)), func() bool { return len(ev.all()) >= len(want) })
	if got := ev.all(); !slices.Equal(got, want) {
		t.Fatalf("events %v\nwant   %v", got, want)
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestPipelineFlushesAtBatchSize(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 10}, nil, nil)
	h.sendReadings(25)
	waitFor(t, "two full batches", func() bool { return len(h.ev.acks()) == 20 })
	_, batches := h.store.snapshot()
	if len(batches) != 2 || len(batches[0]) != 10 || len(batches[1]) != 10 {
		t.Fatalf("batches %v, want two of 10", batchSizes(batches))
	}
	if got := h.ev.acks(); !slices.Equal(got, seq(1, 20)) {
		t.Fatalf("acks %v, want 1..20 in order", got)
	}
	// The remaining 5 wait for the (hour-long) interval, or the shutdown,
	// which only commits what the pipeline has taken from the queue.
	// Once the queue is empty the last message is in the batch: the
	// pipeline finishes handling a message before it looks at ctx again.
	waitFor(t, "the queue to drain", func() bool { return len(h.in) == 0 })
	h.stop(t)
	if got := h.ev.acks(); !slices.Equal(got, seq(1, 25)) {
		t.Fatalf("after shutdown acks %v, want 1..25", got)
	}
	if got := testutil.ToFloat64(h.m.ingested); got != 25 {
		t.Errorf("ingested %v, want 25", got)
	}
	if got := testutil.CollectAndCount(h.m.batchSize); got != 1 {
		t.Errorf("batch size histogram has %d series", got)
	}
}

func batchSizes(bs [][]model.Reading) []int {
	var n []int
	for _, b := range bs {
		n = append(n, len(b))
	}
	return n
}

func TestPipelineFlushesAtInterval(t *testing.T) {
	t.Parallel()
	const interval = 40 * time.Millisecond
	h := startPipeline(t, Config{BatchSize: 1000, FlushInterval: interval}, nil, nil)
	start := time.Now()
	h.sendReadings(3)
	waitFor(t, "the interval flush", func() bool { return len(h.ev.acks()) == 3 })
	if waited := time.Since(start); waited < interval {
		t.Errorf("flushed after %s, before the flush interval %s", waited, interval)
	}
	// A second batch gets its own interval.
	h.sendReadings(2)
	waitFor(t, "the second interval flush", func() bool { return len(h.ev.acks()) == 5 })
	if _, batches := h.store.snapshot(); !slices.Equal(batchSizes(batches), []int{3, 2}) {
		t.Fatalf("batches %v, want [3 2]", batchSizes(batches))
	}
}

func TestPipelineAcksAfterCommitInArrivalOrder(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 1000, FlushInterval: 10 * time.Millisecond}, nil, nil)
	h.send("sensors/s1/t", "1")
	h.send("sensors/s1/t", "warm") // non_numeric
	h.send("sensors/s1", `{"a": 1, "b": 2}`)
	h.send("bad", "1")            // bad_topic
	h.send("sensors/s1/t", "NaN") // not_finite
	h.send("sensors/s2/t", "3")
	waitFor(t, "all acks", func() bool { return len(h.ev.acks()) == 6 })

	want := []string{"insert:4", "ack:1", "ack:2", "ack:3", "ack:4", "ack:5", "ack:6", "publish-a:4"}
	wantEvents(t, h.ev, want)
	for reason, n := range map[string]float64{ReasonNonNumeric: 1, ReasonBadTopic: 1, ReasonNotFinite: 1, ReasonOversize: 0} {
		if got := testutil.ToFloat64(h.m.rejected[reason]); got != n {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, n)
		}
	}
}

func TestPipelineOnlyRejectedMessagesAreAckedWithoutStore(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{FlushInterval: 5 * time.Millisecond}, nil, nil)
	h.send("sensors/s1/t", "")
	h.send("sensors/s1/t", "x")
	waitFor(t, "acks", func() bool { return len(h.ev.acks()) == 2 })
	if calls, _ := h.store.snapshot(); calls != 0 {
		t.Fatalf("InsertReadings called %d times for a batch without readings", calls)
	}
	if got := h.ev.all(); !slices.Equal(got, []string{"ack:1", "ack:2"}) {
		t.Fatalf("events %v: sinks must not get empty batches", got)
	}
}

func TestPipelineRetriesStoreErrorsBeforeAcking(t *testing.T) {
	t.Parallel()
	store := &pipeStore{failures: 3}
	h := startPipeline(t, Config{BatchSize: 2}, store, nil)
	h.sendReadings(2)
	waitFor(t, "commit after retries", func() bool { return len(h.ev.acks()) == 2 })
	want := []string{"insert-failed", "insert-failed", "insert-failed", "insert:2", "ack:1", "ack:2", "publish-a:2"}
	wantEvents(t, h.ev, want)
	if got := testutil.ToFloat64(h.m.flushErrors[FlushError]); got != 3 {
		t.Errorf("flush errors %v, want 3", got)
	}
}

// TestPipelineTimesOutHungCommits: an attempt that gets no answer is
// cut off at the commit timeout, counted and logged as a timeout, and
// retried.
func TestPipelineTimesOutHungCommits(t *testing.T) {
	t.Parallel()
	store := &pipeStore{hangs: 2}
	logs := &logBuffer{}
	h := startPipeline(t, Config{BatchSize: 2, CommitTimeout: 10 * time.Millisecond}, store, func(p *pipeline) {
		p.log = slog.New(slog.NewTextHandler(logs, nil))
	})
	h.sendReadings(2)
	waitFor(t, "commit after the hangs", func() bool { return len(h.ev.acks()) == 2 })
	want := []string{"insert-hung", "insert-hung", "insert:2", "ack:1", "ack:2", "publish-a:2"}
	wantEvents(t, h.ev, want)
	if got := testutil.ToFloat64(h.m.flushErrors[FlushTimeout]); got != 2 {
		t.Errorf("flush errors{timeout} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.flushErrors[FlushError]); got != 0 {
		t.Errorf("flush errors{error} = %v, want 0", got)
	}
	if n := logs.count("insert readings timed out"); n != 2 {
		t.Errorf("%d timeout log lines, want 2", n)
	}
}

func TestPipelineHoldsBackWhileStoreIsDown(t *testing.T) {
	t.Parallel()
	store := &pipeStore{failures: -1} // always fails
	h := startPipeline(t, Config{BatchSize: 2}, store, func(p *pipeline) { p.shutdownTimeout = 50 * time.Millisecond })
	h.sendReadings(5)
	waitFor(t, "several attempts", func() bool { calls, _ := h.store.snapshot(); return calls >= 5 })
	// While the first batch is retried, the receiver fills one more batch
	// (group commit overlaps receiving with committing) and takes nothing
	// after it: later messages stay in the queue.
	if n := len(h.in); n != 1 {
		t.Errorf("queue holds %d messages, want 1 (the pipeline must take no more than one batch while retrying)", n)
	}
	h.stop(t)
	if acks := h.ev.acks(); len(acks) != 0 {
		t.Fatalf("acked %v although nothing was committed", acks)
	}
	for _, e := range h.ev.all() {
		if e != "insert-failed" {
			t.Fatalf("unexpected event %q", e)
		}
	}
}

func TestPipelineShutdownCommitsBatch(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{}, nil, nil) // hour-long interval: only shutdown flushes
	h.sendReadings(3)
	h.send("sensors/s1/t", "x")
	waitFor(t, "the queue to drain", func() bool { return len(h.in) == 0 })
	h.stop(t)
	want := []string{"insert:3", "ack:1", "ack:2", "ack:3", "ack:4", "publish-a:3"}
	wantEvents(t, h.ev, want)
}

func TestPipelineCountsDuplicatesAndPassesOnlyNewReadings(t *testing.T) {
	t.Parallel()
	store := &pipeStore{fresh: func(rs []model.Reading) []model.Reading { return rs[1:] }}
	h := startPipeline(t, Config{BatchSize: 4}, store, nil)
	h.sendReadings(4)
	waitFor(t, "commit", func() bool { return len(h.ev.acks()) == 4 })
	h.sink.mu.Lock()
	got := len(h.sink.got)
	h.sink.mu.Unlock()
	if got != 3 {
		t.Errorf("sink got %d readings, want the 3 new ones (a duplicate was pushed before)", got)
	}
	if got := testutil.ToFloat64(h.m.ingested); got != 3 {
		t.Errorf("ingested %v, want 3", got)
	}
	if got := testutil.ToFloat64(h.m.duplicate); got != 1 {
		t.Errorf("duplicate %v, want 1", got)
	}
}

func TestPipelineSinksGetCommittedReadings(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 3}, nil, nil)
	h.send("sensors/s1", `{"b": 2, "a": 1}`)
	h.send("sensors/s2/c", "3")
	waitFor(t, "commit", func() bool { return len(h.ev.acks()) == 2 })
	h.sink.mu.Lock()
	got := slices.Clone(h.sink.got)
	h.sink.mu.Unlock()
	_, batches := h.store.snapshot()
	if !slices.EqualFunc(got, batches[0], readingEqual) {
		t.Fatalf("sink got %+v, store committed %+v", got, batches[0])
	}
	want := []model.Reading{
		{SensorID: "s1", Metric: "a", Value: 1, TS: testNow},
		{SensorID: "s1", Metric: "b", Value: 2, TS: testNow},
		{SensorID: "s2", Metric: "c", Value: 3, TS: testNow},
	}
	if !slices.EqualFunc(got, want, readingEqual) {
		t.Fatalf("sink got %+v, want %+v", got, want)
	}
}

func TestPipelineBatchBoundedByMessages(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 5}, nil, nil)
	for range 5 {
		h.send("sensors/s1/t", "x") // rejected: no readings, still a batch
	}
	waitFor(t, "acks of a full batch of rejected messages", func() bool { return len(h.ev.acks()) == 5 })
}

func TestPipelineDropsRetainedMessages(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 3}, nil, nil)
	h.nextID++
	h.in <- delivery{msg: &pahoMsg{fakeMsg: fakeMsg{id: h.nextID, topic: "sensors/s1/t", payload: []byte("1"), ev: h.ev}, retained: true}, received: testNow}
	h.nextID++
	h.in <- delivery{msg: &pahoMsg{fakeMsg: fakeMsg{id: h.nextID, topic: "sensors/s1/t", payload: []byte("2"), ev: h.ev}}, received: testNow}
	h.sendReadings(1)
	waitFor(t, "acks", func() bool { return len(h.ev.acks()) == 3 })
	want := []string{"insert:2", "ack:1", "ack:2", "ack:3", "publish-a:2"}
	wantEvents(t, h.ev, want)
	if got := testutil.ToFloat64(h.m.rejected[ReasonRetained]); got != 1 {
		t.Errorf("rejected{retained} = %v, want 1", got)
	}
}

// pahoMsg is an mqtt.Message for handler tests.
type pahoMsg struct {
	fakeMsg
	retained bool
}

func (*pahoMsg) Duplicate() bool   { return false }
func (*pahoMsg) Qos() byte         { return 1 }
func (m *pahoMsg) Retained() bool  { return m.retained }
func (*pahoMsg) MessageID() uint16 { return 1 }

var _ mqtt.Message = (*pahoMsg)(nil)

func TestEnqueueWaitsWhenQueueIsFull(t *testing.T) {
	t.Parallel()
	in, err := New(Config{BrokerURL: "tcp://127.0.0.1:1", ClientID: "x", QueueSize: 1}, &pipeStore{}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ev := &events{}
	in.enqueue(ctx, &pahoMsg{fakeMsg: fakeMsg{id: 1, ev: ev}})
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		in.enqueue(ctx, &pahoMsg{fakeMsg: fakeMsg{id: 2, ev: ev}})
	}()
	waitFor(t, "queue_full to count the wait", func() bool { return testutil.ToFloat64(in.m.queueFull) == 1 })
	select {
	case <-blocked:
		t.Fatal("enqueue returned although the queue was full (dropped the message?)")
	case <-time.After(20 * time.Millisecond):
	}
	<-in.queue // room again: the waiting message goes in
	<-blocked
	d := <-in.queue
	if m := d.msg.(*pahoMsg); m.id != 2 {
		t.Fatalf("queued message %d, want 2", m.id)
	}
	if d.received.IsZero() {
		t.Error("queued without its receive time")
	}
	if got := testutil.ToFloat64(in.m.received); got != 2 {
		t.Errorf("received %v, want 2", got)
	}

	// A handler waiting at shutdown gives up (the message stays unacked).
	in.enqueue(ctx, &pahoMsg{fakeMsg: fakeMsg{id: 3, ev: ev}})
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	in.enqueue(ctx, &pahoMsg{fakeMsg: fakeMsg{id: 4, ev: ev}})
	if acks := ev.acks(); len(acks) != 0 {
		t.Fatalf("acked %v", acks)
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		st   ReadingStore
		ok   bool
	}{
		{"minimal", Config{BrokerURL: "tcp://127.0.0.1:1883", ClientID: "watchroom"}, &pipeStore{}, true},
		{"websocket with credentials", Config{BrokerURL: "wss://u:p@broker.example:443/mqtt", ClientID: "w"}, &pipeStore{}, true},
		{"no store", Config{BrokerURL: "tcp://127.0.0.1:1883", ClientID: "w"}, nil, false},
		{"no client id", Config{BrokerURL: "tcp://127.0.0.1:1883"}, &pipeStore{}, false},
		{"bad scheme", Config{BrokerURL: "http://u:secret@127.0.0.1:1883", ClientID: "w"}, &pipeStore{}, false},
		{"no host", Config{BrokerURL: "tcp://", ClientID: "w"}, &pipeStore{}, false},
		{"unparsable", Config{BrokerURL: "tcp://[::1", ClientID: "w"}, &pipeStore{}, false},
		{"empty topic", Config{BrokerURL: "tcp://h:1", ClientID: "w", Topics: []string{""}}, &pipeStore{}, false},
		{"bad wildcard", Config{BrokerURL: "tcp://h:1", ClientID: "w", Topics: []string{"sensors/#/x"}}, &pipeStore{}, false},
		{"partial plus", Config{BrokerURL: "tcp://h:1", ClientID: "w", Topics: []string{"sensors/a+"}}, &pipeStore{}, false},
		{"shared subscription", Config{BrokerURL: "tcp://h:1", ClientID: "w", Topics: []string{"$share/g/sensors/+/#"}}, &pipeStore{}, true},
		{"retry max below min", Config{BrokerURL: "tcp://h:1", ClientID: "w", RetryMin: time.Second, RetryMax: time.Millisecond}, &pipeStore{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, err := New(tt.cfg, tt.st, nil, prometheus.NewRegistry(), nil)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok = %v", err, tt.ok)
			}
			if err != nil {
				if in != nil {
					t.Error("non-nil Ingest with an error")
				}
				if strings.Contains(err.Error(), ":secret@") {
					t.Errorf("error %q leaks credentials", err)
				}
				return
			}
			if in.cfg.BatchSize != DefaultBatchSize || in.cfg.QueueSize != DefaultQueueSize ||
				len(in.cfg.Topics) == 0 || in.Connected() {
				t.Errorf("defaults not applied: %+v", in.cfg)
			}
		})
	}
}

func TestNewRegistersMetricsOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := Config{BrokerURL: "tcp://127.0.0.1:1883", ClientID: "w"}
	if _, err := New(cfg, &pipeStore{}, nil, reg, nil); err != nil {
		t.Fatal(err)
	}
	func() {
		// A second registration on one registry is a wiring bug: every
		// package's newMetrics uses MustRegister.
		defer func() {
			if recover() == nil {
				t.Fatal("second New on the same registry should panic")
			}
		}()
		_, _ = New(cfg, &pipeStore{}, nil, reg, nil)
	}()
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("%d series registered", n)
	}
}

// TestPipelineStampsReceiptsApart: messages without ts received at the same
// instant get distinct, increasing stamps per series; readings with ts keep
// theirs.
func TestPipelineStampsReceiptsApart(t *testing.T) {
	t.Parallel()
	h := startPipeline(t, Config{BatchSize: 5}, nil, nil)
	h.send("sensors/s1/t", "1")
	h.send("sensors/s1/t", "2")
	h.send("sensors/s2/t", "3")
	h.send("sensors/s1/t", `{"value": 4, "ts": 1714564800}`)
	h.send("sensors/s1/t", "5")
	waitFor(t, "commit", func() bool { return len(h.ev.acks()) == 5 })
	_, batches := h.store.snapshot()
	us := func(n int) time.Time { return testNow.Add(time.Duration(n) * time.Microsecond) }
	want := []time.Time{us(0), us(1), us(0), time.Unix(1714564800, 0), us(2)}
	for i, r := range batches[0] {
		if !r.TS.Equal(want[i]) || r.Receipt != (i != 3) {
			t.Errorf("reading %d (%s %v): ts %v receipt %v, want %v receipt %v", i, r.SensorID, r.Value, r.TS, r.Receipt, want[i], i != 3)
		}
	}
}

func TestPipelineCountsConflictsApartFromDuplicates(t *testing.T) {
	t.Parallel()
	store := &pipeStore{}
	logs := &logBuffer{}
	h := startPipeline(t, Config{BatchSize: 5}, store, func(p *pipeline) { p.log = slog.New(slog.NewTextHandler(logs, nil)) })
	store.mu.Lock()
	store.result = func(rs []model.Reading) model.InsertResult {
		return model.InsertResult{Fresh: rs[:1], Duplicates: 1, Restamped: 0,
			Conflicts:     []model.Conflict{{Reading: rs[2], Stored: 99}, {Reading: rs[3], Stored: 98}},
			PastRetention: rs[4:], RawHorizon: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	}
	store.mu.Unlock()
	h.sendReadings(5)
	// All acknowledged: a refused reading would be refused again.
	waitFor(t, "commit", func() bool { return len(h.ev.acks()) == 5 })
	for name, c := range map[string]struct {
		got, want float64
	}{
		"ingested":       {testutil.ToFloat64(h.m.ingested), 1},
		"duplicate":      {testutil.ToFloat64(h.m.duplicate), 1},
		"conflict":       {testutil.ToFloat64(h.m.conflict), 2},
		"past_retention": {testutil.ToFloat64(h.m.refused), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	if n := logs.count("stored_value=99"); n != 1 {
		t.Errorf("conflict logged %d times with the stored value, want once (bounded rate):\n%s", n, logs.buf.String())
	}
	if n := logs.count("raw_horizon=2026-01-02T00:00:00Z"); n != 1 {
		t.Errorf("past retention logged %d times with the horizon, want once:\n%s", n, logs.buf.String())
	}
}
