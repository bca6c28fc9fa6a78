package backplane

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

func TestEncodeDecode(t *testing.T) {
	batch := rs(42, 2*partSize+1)
	msgs, err := encode("web-1", 42, batch)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("encode: %d messages, %v; want 3", len(msgs), err)
	}
	var got []model.Reading
	for i, m := range msgs {
		p, err := decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if p.origin != "web-1" || p.seq != 42 || p.index != i || p.count != 3 {
			t.Fatalf("part %d = %+v", i, p)
		}
		got = append(got, p.readings...)
	}
	if len(got) != len(batch) || got[partSize].SensorID != batch[partSize].SensorID || got[0].Seq != 42 || !got[0].TS.Equal(batch[0].TS) {
		t.Fatalf("decoded readings differ: %d of %d", len(got), len(batch))
	}
	empty, err := encode("web-1", 43, nil)
	if err != nil || len(empty) != 1 {
		t.Fatalf("empty batch: %d messages, %v", len(empty), err)
	}
	if p, err := decode(empty[0]); err != nil || p.count != 1 || len(p.readings) != 0 {
		t.Fatalf("empty batch decoded as %+v, %v", p, err)
	}
	for _, bad := range []string{
		`not json`,
		`{"v":2,"origin":"a","seq":1,"part":0,"parts":1,"readings":[]}`,
		`{"v":1,"origin":"","seq":1,"part":0,"parts":1,"readings":[]}`,
		`{"v":1,"origin":"a","seq":0,"part":0,"parts":1,"readings":[]}`,
		`{"v":1,"origin":"a","seq":1,"part":1,"parts":1,"readings":[]}`,
		`{"v":1,"origin":"a","seq":1,"part":0,"parts":1,"readings":[{"sensor_id":"a/b","metric":"t","value":1,"ts":"2026-12-01T00:00:00Z"}]}`,
		`{"v":1,"origin":"a","seq":1,"part":0,"parts":1,"readings":[{"sensor_id":"a","metric":"t","value":1}]}`,
	} {
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("decode(%s) accepted", bad)
		}
	}
}

type fakeStore struct {
	mu    sync.Mutex
	rows  []model.Reading
	asked [][2]int64
}

func (s *fakeStore) LastReadingSeq(context.Context) (int64, error) { return 4, nil }

func (s *fakeStore) ReadingsInSeqRange(_ context.Context, from, to int64, limit int) ([]model.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, [2]int64{from, to})
	var out []model.Reading
	for _, r := range s.rows {
		if r.Seq >= from && r.Seq <= to && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

type recSink struct{ got chan []model.Reading }

func (s recSink) PublishReadings(rs []model.Reading) { s.got <- rs }

// Run's loop with an injected clock: a batch whose predecessor is missing
// waits for the hold timer, then the gap is read from the store; the
// instance's own batch goes through the same ordering.
func TestLoopFillsAGapWhenTheHoldEnds(t *testing.T) {
	st := &fakeStore{rows: append(rs(5, 2), rs(6, 1)...)}
	sink := recSink{got: make(chan []model.Reading, 10)}
	reg := prometheus.NewRegistry()
	b, err := New(Config{BrokerURL: "tcp://127.0.0.1:1", ClientID: "c", Origin: "self"}, st, []Sink{sink}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	fire := make(chan time.Time) // the hold timer; fires when the test says
	var waits []time.Duration
	b.now = func() time.Time { return t0 }
	b.after = func(d time.Duration) <-chan time.Time { waits = append(waits, d); return fire }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.loop(ctx) }()

	b.PublishReadings(rs(7, 1)) // ours, committed after 5 and 6 that have not arrived
	fire <- t0                  // accepted only once the loop waits for 5
	// Released together, the three batches reach the sink in one call (one
	// item in each connection's send queue), in seq order.
	select {
	case got := <-sink.got:
		var seqs []int64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		if !slices.Equal(seqs, []int64{5, 5, 6, 7}) {
			t.Fatalf("delivered readings of seqs %v, want 5 5 6 7 in one call", seqs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	cancel()
	<-done
	if len(st.asked) != 1 || st.asked[0] != [2]int64{5, 7} {
		t.Fatalf("store asked for %v, want seqs 5..7 once", st.asked)
	}
	if len(waits) == 0 || waits[0] != DefaultHold {
		t.Fatalf("hold waits %v, want %v first", waits, DefaultHold)
	}
	if g, f, r := testutil.ToFloat64(b.m.gaps), testutil.ToFloat64(b.m.gapsFilled), testutil.ToFloat64(b.m.gapReadings); g != 2 || f != 2 || r != 3 {
		t.Fatalf("gaps %v filled %v readings %v, want 2, 2, 3", g, f, r)
	}
	if n, err := testutil.GatherAndCount(reg, "watchroom_backplane_gaps_total"); err != nil || n != 1 {
		t.Fatalf("metric not registered: %d %v", n, err)
	}
	if got := len(b.pub); got != 1 {
		t.Fatalf("publish queue holds %d batches, want ours", got)
	}
}
