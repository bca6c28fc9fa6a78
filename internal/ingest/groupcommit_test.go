package ingest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// gateStore puts a gate in front of a pipeStore: each commit reports its
// batch size on entered, then waits for a value from release.
type gateStore struct {
	*pipeStore
	entered chan int
	release chan struct{}
}

func (s *gateStore) InsertReadings(ctx context.Context, rs []model.Reading) (model.InsertResult, error) {
	s.entered <- len(rs)
	select {
	case <-s.release:
	case <-ctx.Done():
		return model.InsertResult{}, ctx.Err()
	}
	return s.pipeStore.InsertReadings(ctx, rs)
}

// startGated starts a pipeline in group commit (the default; the
// harness's own default is an hour-long linger) behind a gate.
func startGated(t *testing.T, cfg Config, tune func(*pipeline)) (*pipeHarness, *gateStore) {
	t.Helper()
	ps := &pipeStore{}
	gs := &gateStore{pipeStore: ps, entered: make(chan int, 100), release: make(chan struct{})}
	h := startPipeline(t, cfg, ps, func(p *pipeline) {
		p.flushInterval = 0
		p.store = gs
		if tune != nil {
			tune(p)
		}
	})
	return h, gs
}

func entered(t *testing.T, gs *gateStore) int {
	t.Helper()
	select {
	case n := <-gs.entered:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no commit started within 10s")
		return 0
	}
}

// A lone message is committed at once when the committer is idle; no
// timer is started.
func TestGroupCommitCommitsAloneWhenIdle(t *testing.T) {
	t.Parallel()
	var timers atomic.Int32
	h, gs := startGated(t, Config{BatchSize: 1000}, func(p *pipeline) {
		p.after = func(time.Duration) <-chan time.Time { timers.Add(1); return nil } // a clock that never fires
	})
	for i := 1; i <= 2; i++ {
		h.sendReadings(1)
		if n := entered(t, gs); n != 1 {
			t.Fatalf("commit %d of %d readings, want 1", i, n)
		}
		gs.release <- struct{}{}
		waitFor(t, "the ack", func() bool { return len(h.ev.acks()) == i })
	}
	want := []string{"insert:1", "ack:1", "publish-a:1", "insert:1", "ack:2", "publish-a:1"}
	wantEvents(t, h.ev, want)
	if n := timers.Load(); n != 0 {
		t.Errorf("%d linger timers started in group commit", n)
	}
}

// While one commit runs, the next batch fills from the queue; it is
// committed as one when the first ends, and every ack follows the commit
// that holds its message, in arrival order.
func TestGroupCommitFillsNextBatchDuringCommit(t *testing.T) {
	t.Parallel()
	h, gs := startGated(t, Config{BatchSize: 1000}, nil)
	h.sendReadings(1)
	if n := entered(t, gs); n != 1 {
		t.Fatalf("first commit of %d readings, want 1", n)
	}
	h.sendReadings(5)
	h.send("sensors/s1/t", "x") // rejected: acked in its place
	waitFor(t, "the receiver to take the queue during the commit", func() bool { return len(h.in) == 0 })
	if acks := h.ev.acks(); len(acks) != 0 {
		t.Fatalf("acked %v before any commit ended", acks)
	}
	gs.release <- struct{}{}
	if n := entered(t, gs); n != 5 {
		t.Fatalf("second commit of %d readings, want the 5 that arrived during the first", n)
	}
	if got := h.ev.acks(); !slices.Equal(got, []int{1}) {
		t.Fatalf("acks %v during the second commit, want [1]", got)
	}
	gs.release <- struct{}{}
	waitFor(t, "all acks", func() bool { return len(h.ev.acks()) == 7 })
	want := []string{"insert:1", "ack:1", "publish-a:1", "insert:5", "ack:2", "ack:3", "ack:4", "ack:5", "ack:6", "ack:7", "publish-a:5"}
	wantEvents(t, h.ev, want)
}

// A full batch waits for the committer, and the receiver takes nothing
// more meanwhile: the queue holds the rest (back-pressure).
func TestGroupCommitFullBatchWaits(t *testing.T) {
	t.Parallel()
	h, gs := startGated(t, Config{BatchSize: 3}, nil)
	h.sendReadings(1)
	entered(t, gs)
	h.sendReadings(6)
	waitFor(t, "the next batch to fill", func() bool { return len(h.in) == 3 })
	time.Sleep(20 * time.Millisecond)
	if n := len(h.in); n != 3 {
		t.Fatalf("queue holds %d, want 3: a full batch must stop the receiver", n)
	}
	gs.release <- struct{}{}
	if n := entered(t, gs); n != 3 {
		t.Fatalf("second commit of %d, want 3", n)
	}
	waitFor(t, "the last batch to fill", func() bool { return len(h.in) == 0 })
	gs.release <- struct{}{}
	if n := entered(t, gs); n != 3 {
		t.Fatalf("third commit of %d, want 3", n)
	}
	gs.release <- struct{}{}
	waitFor(t, "all acks", func() bool { return len(h.ev.acks()) == 7 })
	if got := h.ev.acks(); !slices.Equal(got, seq(1, 7)) {
		t.Fatalf("acks %v, want 1..7", got)
	}
}

// With a linger (WATCHROOM_FLUSH_INTERVAL > 0) an idle committer still
// gets the batch only when the clock says the interval has passed.
func TestGroupCommitLingerUsesClock(t *testing.T) {
	t.Parallel()
	tick := make(chan time.Time, 1)
	var asked atomic.Int64
	h, gs := startGated(t, Config{BatchSize: 1000}, func(p *pipeline) {
		p.flushInterval = 25 * time.Millisecond
		p.after = func(d time.Duration) <-chan time.Time { asked.Store(int64(d)); return tick }
	})
	h.sendReadings(3)
	waitFor(t, "the receiver to take the queue", func() bool { return len(h.in) == 0 })
	select {
	case n := <-gs.entered:
		t.Fatalf("a batch of %d was committed before the linger ended", n)
	case <-time.After(30 * time.Millisecond): // real time past the interval: only the injected clock counts
	}
	if d := time.Duration(asked.Load()); d != 25*time.Millisecond {
		t.Errorf("linger timer of %v, want 25ms", d)
	}
	tick <- time.Time{}
	if n := entered(t, gs); n != 3 {
		t.Fatalf("commit of %d, want 3", n)
	}
	gs.release <- struct{}{}
	waitFor(t, "acks", func() bool { return len(h.ev.acks()) == 3 })
}

// Shutdown commits, in order, the batch being committed and the one
// filling behind it, and acks both.
func TestGroupCommitShutdownCommitsBothStages(t *testing.T) {
	t.Parallel()
	h, gs := startGated(t, Config{BatchSize: 1000}, nil)
	h.sendReadings(1)
	entered(t, gs)
	h.sendReadings(2)
	waitFor(t, "the second batch to fill", func() bool { return len(h.in) == 0 })
	go func() {
		// The first batch's attempt is under way: a shutdown lets it
		// finish (it is not cut, see flush); then the second batch commits
		// under shutdown's context.
		gs.release <- struct{}{}
		<-gs.entered
		gs.release <- struct{}{}
	}()
	h.stop(t)
	want := []string{"insert:1", "ack:1", "publish-a:1", "insert:2", "ack:2", "ack:3", "publish-a:2"}
	if got := h.ev.all(); !slices.Equal(got, want) {
		t.Fatalf("events %v\nwant   %v", got, want)
	}
}
