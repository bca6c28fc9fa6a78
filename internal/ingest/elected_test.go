package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// fakeTerm is a Term the test ends by closing lost.
type fakeTerm struct {
	lost     chan struct{}
	once     sync.Once
	released chan struct{}
}

func newFakeTerm() *fakeTerm {
	return &fakeTerm{lost: make(chan struct{}), released: make(chan struct{})}
}

func (f *fakeTerm) Lost() <-chan struct{} { return f.lost }
func (f *fakeTerm) Release()              { f.once.Do(func() { close(f.released) }) }

// leadFrom is a Config.Lead that grants the terms sent on grants.
func leadFrom(grants <-chan *fakeTerm) func(context.Context) (Term, error) {
	return func(ctx context.Context) (Term, error) {
		select {
		case t := <-grants:
			return t, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startElected runs an Ingest with Config.Lead taking terms from grants,
// without waiting for it to connect (a standing-by one does not).
func startElected(t *testing.T, b *mqtttest.Broker, st ReadingStore, grants <-chan *fakeTerm) *runningIngest {
	t.Helper()
	in, err := New(Config{BrokerURL: b.URL(), ClientID: "elected-ingest", FlushInterval: 5 * time.Millisecond, Lead: leadFrom(grants)}, st, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &runningIngest{Ingest: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// Two instances elect one to ingest, under one client id: only the one
// holding a term connects; when its term is lost it stops and the broker
// keeps the session's messages (those published while nobody held it
// included) for the instance that takes the next term. Every reading is
// stored once.
func TestElectedIngestHandsTheSessionOver(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	db := newMemStore()
	st1, st2 := &countingStore{memStore: db}, &countingStore{memStore: db}
	grants1, grants2 := make(chan *fakeTerm, 1), make(chan *fakeTerm, 1)
	term1 := newFakeTerm()
	grants1 <- term1
	in1 := startElected(t, b, st1, grants1)
	in2 := startElected(t, b, st2, grants2)
	waitFor(t, "instance 1 to connect", in1.Connected)
	waitFor(t, "instance 2 to stand by", in2.Standby)
	if in1.Standby() || in2.Connected() {
		t.Fatalf("instance 1 standby=%v, instance 2 connected=%v: only the term's holder may connect", in1.Standby(), in2.Connected())
	}
	if l1, l2 := testutil.ToFloat64(in1.m.leader), testutil.ToFloat64(in2.m.leader); l1 != 1 || l2 != 0 {
		t.Errorf("watchroom_ingest_leader = %v and %v, want 1 and 0", l1, l2)
	}

	const n = 500
	pub := newPublisher(t, b)
	publishReadings(t, pub, testBase(), 0, n)
	waitLong(t, "round 1 at instance 1", func() bool { rows, _ := db.counts(); return rows >= n })

	// Instance 1 loses its term: it stops its session and stands by again.
	close(term1.lost)
	select {
	case <-term1.released:
	case <-time.After(15 * time.Second):
		t.Fatal("instance 1 did not release its lost term")
	}
	waitFor(t, "instance 1 to stand by again", in1.Standby)
	// Published while no instance holds the session: the broker queues it.
	publishReadings(t, pub, testBase(), n, n)
	term2 := newFakeTerm()
	grants2 <- term2
	waitFor(t, "instance 2 to connect", in2.Connected)
	publishReadings(t, pub, testBase(), 2*n, n)
	waitLong(t, "every reading", func() bool { rows, _ := db.counts(); return rows >= 3*n })
	time.Sleep(100 * time.Millisecond) // a second copy would show by now
	if rows, offered := db.counts(); rows != 3*n || offered != 3*n {
		t.Fatalf("%d rows from %d offered, want %d of %d", rows, offered, 3*n, 3*n)
	}
	if got := st2.count(); got != 2*n {
		t.Errorf("instance 2 ingested %d, want the %d published after instance 1 lost its term", got, 2*n)
	}
	in2.stop(t)
	select {
	case <-term2.released:
	default:
		t.Error("instance 2 did not release its term when it stopped")
	}
}
