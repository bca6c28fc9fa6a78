package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
)

// Integration tests: a real Mosquitto per test (mqtttest), a fake store that
// deduplicates like the real one does on (sensor_id, metric, ts).

type readingKey struct {
	sensor, metric string
	us             int64
}

type memStore struct {
	down atomic.Bool // when set, every insert fails

	mu      sync.Mutex
	rows    map[readingKey]float64
	offered int // readings passed to InsertReadings, duplicates included
}

func newMemStore() *memStore { return &memStore{rows: map[readingKey]float64{}} }

func (s *memStore) InsertReadings(ctx context.Context, rs []model.Reading) (model.InsertResult, error) {
	if s.down.Load() {
		return model.InsertResult{}, errors.New("connection refused")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var res model.InsertResult
	for _, r := range rs {
		k := readingKey{r.SensorID, r.Metric, r.TS.UnixMicro()}
		if _, dup := s.rows[k]; !dup {
			s.rows[k] = r.Value
			res.Fresh = append(res.Fresh, r)
		} else {
			res.Duplicates++
		}
	}
	s.offered += len(rs)
	return res, nil
}

func (s *memStore) counts() (rows, offered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows), s.offered
}

// has reports which of the readings published by publishReadings(from, n)
// are missing.
func (s *memStore) missing(base time.Time, from, n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var miss []int
	for i := from; i < from+n; i++ {
		if _, ok := s.rows[readingKey{"s1", "temperature", base.Add(time.Duration(i) * time.Millisecond).UnixMicro()}]; !ok {
			miss = append(miss, i)
		}
	}
	return miss
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

type runningIngest struct {
	*Ingest
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// startIngest runs an Ingest against b and waits until it is subscribed.
func startIngest(t *testing.T, b *mqtttest.Broker, clientID string, st ReadingStore, logs *logBuffer, tune func(*Ingest)) *runningIngest {
	t.Helper()
	reg := prometheus.NewRegistry()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	in, err := New(Config{BrokerURL: b.URL(), ClientID: clientID, FlushInterval: 5 * time.Millisecond}, st, nil, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(in)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &runningIngest{Ingest: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	waitFor(t, "ingest to connect and subscribe", in.Connected)
	return r
}

// stop cancels Run and waits for it; safe to call twice.
func (r *runningIngest) stop(t *testing.T) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15s of cancellation")
		}
	})
}

// newPublisher connects a plain QoS 1 publisher (a sensor).
func newPublisher(t *testing.T, b *mqtttest.Broker) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(b.URL()).
		SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect to %s: %v", b.URL(), tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishReadings publishes readings from..from+n-1 of sensor s1, reading i
// stamped base+i ms, and waits for the broker's PUBACKs.
func publishReadings(t *testing.T, c mqtt.Client, base time.Time, from, n int) {
	t.Helper()
	toks := make([]mqtt.Token, 0, n)
	for i := from; i < from+n; i++ {
		ts := base.Add(time.Duration(i) * time.Millisecond).UnixMilli()
		toks = append(toks, c.Publish("sensors/s1/temperature", 1, false, fmt.Sprintf(`{"value": %d, "ts": %d}`, i, ts)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

func testBase() time.Time { return time.Now().Add(-time.Hour).Truncate(time.Second) }

func TestIngestDeliversEveryReadingOnce(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	st := newMemStore()
	in := startIngest(t, b, "ingest-once", st, nil, nil)
	pub := newPublisher(t, b)
	base := testBase()

	publishReadings(t, pub, base, 0, 500)
	pub.Publish("sensors/s1/temperature", 1, false, "not a number").WaitTimeout(10 * time.Second)
	waitFor(t, "500 readings in the store", func() bool { rows, _ := st.counts(); return rows == 500 })
	if miss := st.missing(base, 0, 500); len(miss) > 0 {
		t.Fatalf("missing readings %v", miss)
	}
	waitFor(t, "the rejected message", func() bool { return testutil.ToFloat64(in.m.rejected[ReasonNonNumeric]) == 1 })
	if _, offered := st.counts(); offered != 500 {
		t.Errorf("store was offered %d readings, want 500 (each exactly once)", offered)
	}
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"received", in.m.received, 501},
		{"ingested", in.m.ingested, 500},
		{"duplicate", in.m.duplicate, 0},
		{"connected", in.m.connected, 1},
		{"queue_full", in.m.queueFull, 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	in.stop(t)
	if got := testutil.ToFloat64(in.m.connected); got != 0 {
		t.Errorf("connected gauge %v after stop", got)
	}
}

// TestIngestRestartLosesNothing stops the ingest, publishes while it is
// away and starts a new one with the same client id: the broker kept the
// session and delivers everything, and nothing acked before is redelivered.
func TestIngestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	st := newMemStore()
	base := testBase()
	pub := newPublisher(t, b)

	first := startIngest(t, b, "ingest-restart", st, nil, nil)
	publishReadings(t, pub, base, 0, 200)
	// A retained reading without ts: stored once, when it arrives live.
	if tok := pub.Publish("sensors/s2/temperature", 1, true, "7"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish retained: %v", tok.Error())
	}
	waitFor(t, "the first 201 readings", func() bool { rows, _ := st.counts(); return rows == 201 })
	first.stop(t)

	publishReadings(t, pub, base, 200, 300) // nobody is subscribed now

	second := startIngest(t, b, "ingest-restart", st, nil, nil)
	waitFor(t, "all 501 readings", func() bool { rows, _ := st.counts(); return rows >= 501 })
	if miss := st.missing(base, 0, 500); len(miss) > 0 {
		t.Fatalf("missing readings %v", miss)
	}
	// The subscription makes the broker send the retained message again,
	// flagged retained: it must be ignored, or it would be stored a second
	// time stamped with a new now.
	waitFor(t, "the retained copy", func() bool { return testutil.ToFloat64(second.m.rejected[ReasonRetained]) == 1 })
	time.Sleep(50 * time.Millisecond) // room for stray redeliveries to show
	if rows, _ := st.counts(); rows != 501 {
		t.Errorf("%d rows, want 501: the retained copy or a redelivered ts-less message was stored again", rows)
	}
	// Everything the first run committed was acked, and the broker had
	// processed the acks before it disconnected (fenceAcks).
	if got := testutil.ToFloat64(second.m.received); got != 301 {
		t.Errorf("second run received %v messages, want the 300 published while it was down and the retained copy", got)
	}
	if got := testutil.ToFloat64(second.m.duplicate); got != 0 {
		t.Errorf("second run saw %v duplicates: the first run's acks were lost", got)
	}
}

// TestIngestRedeliversUncommitted: what the store could not commit is not
// acked, so a new session gets it again.
func TestIngestRedeliversUncommitted(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	base := testBase()
	pub := newPublisher(t, b)

	broken := newMemStore()
	broken.down.Store(true)
	first := startIngest(t, b, "ingest-redeliver", broken, nil, func(in *Ingest) {
		in.pipe.retryMin, in.pipe.retryMax = 5*time.Millisecond, 20*time.Millisecond
		in.pipe.shutdownTimeout = 100 * time.Millisecond
	})
	publishReadings(t, pub, base, 0, 50)
	waitFor(t, "the first run to receive 50 messages", func() bool { return testutil.ToFloat64(first.m.received) == 50 })
	waitFor(t, "failed flushes", func() bool { return testutil.ToFloat64(first.m.flushErrors[FlushError]) >= 2 })
	first.stop(t)

	st := newMemStore()
	startIngest(t, b, "ingest-redeliver", st, nil, nil)
	waitFor(t, "the 50 uncommitted readings to come back", func() bool { rows, _ := st.counts(); return rows == 50 })
	if miss := st.missing(base, 0, 50); len(miss) > 0 {
		t.Fatalf("missing readings %v", miss)
	}
}

// TestIngestSurvivesBrokerRestart: the client reconnects on its own,
// subscribes again, and readings published after the restart arrive.
func TestIngestSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	st := newMemStore()
	logs := &logBuffer{}
	base := testBase()
	in := startIngest(t, b, "ingest-broker-restart", st, logs, nil)

	pub := newPublisher(t, b)
	publishReadings(t, pub, base, 0, 100)
	waitFor(t, "100 readings before the restart", func() bool { rows, _ := st.counts(); return rows == 100 })

	b.Stop()
	waitFor(t, "ingest to notice the broker is gone", func() bool { return !in.Connected() })
	if tok := pub.Publish("sensors/s1/temperature", 1, false, "1"); tok.WaitTimeout(time.Second) && tok.Error() == nil {
		t.Error("publishing to a stopped broker succeeded")
	}
	b.StartAgain()
	waitFor(t, "ingest to reconnect and subscribe", in.Connected)

	pub2 := newPublisher(t, b)
	publishReadings(t, pub2, base, 100, 100)
	waitFor(t, "readings published after the restart", func() bool { rows, _ := st.counts(); return rows == 200 })
	if miss := st.missing(base, 0, 200); len(miss) > 0 {
		t.Fatalf("missing readings %v", miss)
	}
	if got := testutil.ToFloat64(in.m.connLost); got < 1 {
		t.Errorf("connection lost counter %v, want >= 1", got)
	}
	if n := logs.count("connected and subscribed"); n < 2 {
		t.Errorf("subscribed %d times, want once per connection (>= 2)", n)
	}
}

// TestIngestStopsWithoutBroker: Run keeps retrying an unreachable broker
// and still returns promptly when cancelled.
func TestIngestStopsWithoutBroker(t *testing.T) {
	t.Parallel()
	url := fmt.Sprintf("tcp://127.0.0.1:%d", mqtttest.FreePort(t)) // nothing listens there
	in, err := New(Config{BrokerURL: url, ClientID: "nobody"}, newMemStore(), nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	if in.Connected() {
		t.Fatal("Connected() without a broker")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancellation")
	}
	if err := in.Run(t.Context()); err == nil {
		t.Error("second Run should fail")
	}
}
