package alerts

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// fakeLock is the lead as PostgreSQL's advisory lock gives it: one holder
// at a time; kill ends the holder's session (its term is lost) and keeps
// it from asking again, as when its host lost the database.
type fakeLock struct {
	mu     sync.Mutex
	holder int
	terms  map[int]*fakeTerm
	cut    map[int]bool
}

type fakeTerm struct {
	lost    chan struct{}
	release func()
}

func (t *fakeTerm) Lost() <-chan struct{} { return t.lost }
func (t *fakeTerm) Release()              { t.release() }

func (l *fakeLock) kill(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.terms[id].lost)
	l.holder = 0
	l.cut[id] = true
}

type fakeElector struct {
	l  *fakeLock
	id int
}

func (e fakeElector) Lead(ctx context.Context) (Term, error) {
	for {
		e.l.mu.Lock()
		if e.l.holder == 0 && !e.l.cut[e.id] {
			e.l.holder = e.id
			t := &fakeTerm{lost: make(chan struct{}), release: func() {
				e.l.mu.Lock()
				defer e.l.mu.Unlock()
				if e.l.holder == e.id {
					e.l.holder = 0
				}
			}}
			e.l.terms[e.id] = t
			e.l.mu.Unlock()
			return t, nil
		}
		e.l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// Two instances' detectors on one store, fed the same readings (as the
// backplane does): only the elected one stores and posts; when its lead
// is lost the other takes over, continues the live alert stored by the
// first and resolves it.
func TestElectedDetection(t *testing.T) {
	st := newFakeStore()
	st.rules["s-1"] = []model.AlertRule{
		{SensorID: "s-1", Metric: "t", Kind: model.RuleThreshold, Enabled: true, Min: fp(0), Max: fp(10)},
		{SensorID: "s-1", Metric: "t", Kind: model.RuleSpike, Enabled: false},
	}
	lock := &fakeLock{terms: map[int]*fakeTerm{}, cut: map[int]bool{}}
	clk := &clock{t: t0}
	type instance struct {
		d      *Detector
		poster *fakePoster
		done   chan struct{}
	}
	ctx, cancel := context.WithCancel(t.Context())
	insts := map[int]*instance{}
	for _, id := range []int{1, 2} {
		in := &instance{poster: &fakePoster{}, done: make(chan struct{})}
		in.d = New(Config{Now: clk.Now, SpikeOpenAfter: 1, ThresholdOpenAfter: 1, Elector: fakeElector{lock, id}},
			st, in.poster, &fakeBroadcaster{}, prometheus.NewRegistry(), discard())
		go func() { defer close(in.done); _ = in.d.Run(ctx) }()
		insts[id] = in
	}
	defer func() {
		cancel()
		for _, in := range insts {
			<-in.done
		}
	}()
	leading := func(id int) bool { return testutil.ToFloat64(insts[id].d.m.leader) == 1 }
	loaded := func(id int) bool {
		d := insts[id].d
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.loaded
	}
	// wait polls cond, bounded: leadership and the worker run on their own
	// goroutines.
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s (leading %v %v, loaded %v %v)", what, leading(1), leading(2), loaded(1), loaded(2))
			}
		}
	}
	wait("leader", func() bool { return (leading(1) && loaded(1)) != (leading(2) && loaded(2)) })
	first, second := 1, 2
	if leading(2) {
		first, second = 2, 1
	}
	posted := func(id int) int {
		p := insts[id].poster
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.posts)
	}
	read := func(v float64) {
		now := clk.add(time.Second)
		for _, in := range insts {
			in.d.PublishReadings([]model.Reading{{SensorID: "s-1", Metric: "t", Value: v, TS: now}})
		}
	}

	read(11)
	wait("the alert posted by the leader", func() bool { return posted(first) == 1 })
	if got := testutil.ToFloat64(insts[second].d.m.ignored.WithLabelValues(reasonStandby)); got != 1 {
		t.Fatalf("standby ignored %v readings, want 1", got)
	}

	lock.kill(first)
	wait("the other instance to take over", func() bool { return leading(second) && loaded(second) && !leading(first) })
	read(12)
	wait("the update posted by the new leader", func() bool { return posted(second) == 1 })
	for range 5 {
		read(5)
	}
	wait("the resolve posted by the new leader", func() bool { return posted(second) == 2 })

	all := st.all()
	if len(all) != 1 {
		t.Fatalf("%d alerts stored, want 1: %+v", len(all), all)
	}
	if a := all[0]; a.Count != 2 || a.Live() {
		t.Fatalf("alert %+v: want the two breaches of both leaders folded in one alert, resolved", a)
	}
	if n := len(insts[first].poster.take()); n != 1 {
		t.Fatalf("the first leader posted %d changes after losing the lead", n-1)
	}
}

// A rule and a silence stored through the instance that stands by reach
// the leader's memory at its next refresh.
func TestElectedLeaderRefreshesRulesAndSilences(t *testing.T) {
	st := newFakeStore()
	lock := &fakeLock{terms: map[int]*fakeTerm{}, cut: map[int]bool{}}
	clk := &clock{t: t0}
	ctx := t.Context()
	ds, _ := electedPair(t, st, lock, Config{Now: clk.Now, SpikeOpenAfter: 1, ThresholdOpenAfter: 1, Refresh: 5 * time.Millisecond})
	wait := func(what string, cond func() bool) { t.Helper(); waitUntil(t, what, cond) }
	wait("leader", func() bool { return testutil.ToFloat64(ds[0].m.leader)+testutil.ToFloat64(ds[1].m.leader) == 1 })
	leader, standby := ds[0], ds[1]
	if testutil.ToFloat64(ds[1].m.leader) == 1 {
		leader, standby = ds[1], ds[0]
	}
	if _, err := standby.SetRules(ctx, "s-2", "olivia", []model.AlertRule{{Metric: "t", Kind: model.RuleThreshold, Enabled: true, Max: fp(10)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.CreateSilence(ctx, "olivia", model.Silence{SensorID: "s-3", Until: t0.Add(time.Hour), Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	wait("the leader to learn the rule and the silence", func() bool {
		leader.mu.Lock()
		defer leader.mu.Unlock()
		max := leader.rulesForLocked(seriesKey{"s-2", "t"}).threshold.max
		return max != nil && *max == 10 && len(leader.silences["s-3"]) == 1
	})
	// Removed elsewhere: the leader drops them too.
	if _, err := standby.SetRules(ctx, "s-2", "olivia", nil); err != nil {
		t.Fatal(err)
	}
	wait("the leader to drop the rule", func() bool {
		leader.mu.Lock()
		defer leader.mu.Unlock()
		return leader.rulesForLocked(seriesKey{"s-2", "t"}) == leader.defaults
	})
}

// fakeHandover is the committed stream and the checkpoint, as serve's
// backs them with PostgreSQL.
type fakeHandover struct {
	mu        sync.Mutex
	seq       int64
	at        time.Time
	committed []model.Reading // in seq order
}

func (h *fakeHandover) Checkpoint(context.Context) (int64, time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq, h.at, nil
}

func (h *fakeHandover) SaveCheckpoint(_ context.Context, seq int64, at time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq, h.at = seq, at
	return nil
}

func (h *fakeHandover) LastReadingSeq(context.Context) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.committed[len(h.committed)-1].Seq, nil
}

func (h *fakeHandover) ReadingsInSeqRange(_ context.Context, from, to int64, limit int) ([]model.Reading, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []model.Reading
	for _, r := range h.committed {
		if r.Seq >= from && r.Seq <= to && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (h *fakeHandover) commit(r model.Reading) model.Reading {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Seq = int64(len(h.committed) + 1)
	h.committed = append(h.committed, r)
	return r
}

func (h *fakeHandover) checkpoint() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// A breach committed while the lead changes hands (the old leader gone,
// the new one not yet leading, so nobody evaluates it live) is evaluated
// by the new leader from the checkpoint the old one kept: its alert opens.
func TestElectedLeaderReplaysTheHandover(t *testing.T) {
	st := newFakeStore()
	st.rules["s-1"] = []model.AlertRule{
		{SensorID: "s-1", Metric: "t", Kind: model.RuleThreshold, Enabled: true, Min: fp(0), Max: fp(10)},
		{SensorID: "s-1", Metric: "t", Kind: model.RuleSpike, Enabled: false},
	}
	lock := &fakeLock{terms: map[int]*fakeTerm{}, cut: map[int]bool{}}
	ho := &fakeHandover{}
	clk := &clock{t: t0}
	ds, posters := electedPair(t, st, lock, Config{Now: clk.Now, SpikeOpenAfter: 1, ThresholdOpenAfter: 1,
		CheckInterval: time.Millisecond, Handover: ho})
	wait := func(what string, cond func() bool) { t.Helper(); waitUntil(t, what, cond) }
	leads := func(i int) bool { return testutil.ToFloat64(ds[i].m.leader) == 1 }
	wait("leader", func() bool { return leads(0) != leads(1) })
	first, second := 0, 1
	if leads(1) {
		first, second = 1, 0
	}
	publish := func(v float64, to ...*Detector) {
		r := ho.commit(model.Reading{SensorID: "s-1", Metric: "t", Value: v, TS: clk.add(time.Second)})
		for _, d := range to {
			d.PublishReadings([]model.Reading{r})
		}
	}
	for range 3 {
		publish(5, ds...)
	}
	wait("a checkpoint covering the normal readings", func() bool { return ho.checkpoint() == 3 })

	lock.mu.Lock()
	lock.cut[second+1] = true // elector ids are 1 and 2: nobody may take the lead yet
	lock.mu.Unlock()
	lock.kill(first + 1)
	wait("the first leader to stand down", func() bool { return !leads(first) })
	publish(12) // committed while nobody leads: evaluated by nobody live
	lock.mu.Lock()
	clear(lock.cut) // both may ask again: whoever wins replays
	lock.mu.Unlock()
	wait("an alert from the replay", func() bool {
		all := st.all()
		return len(all) == 1 && all[0].Value == 12
	})
	if got := len(posters[first].take()) + len(posters[second].take()); got != 1 {
		t.Fatalf("%d posts, want the replayed alert once", got)
	}
}

// electedPair runs two instances' detectors on st, elected through lock,
// each with its own poster; they stop when the test ends.
func electedPair(t *testing.T, st *fakeStore, lock *fakeLock, cfg Config) ([]*Detector, []*fakePoster) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var ds []*Detector
	var posters []*fakePoster
	var dones []chan struct{}
	for _, id := range []int{1, 2} {
		c := cfg
		c.Elector = fakeElector{lock, id}
		p := &fakePoster{}
		d := New(c, st, p, &fakeBroadcaster{}, prometheus.NewRegistry(), discard())
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		ds, posters, dones = append(ds, d), append(posters, p), append(dones, done)
	}
	t.Cleanup(func() {
		cancel()
		for _, done := range dones {
			<-done
		}
	})
	return ds, posters
}

// waitUntil polls cond, bounded: leadership and the workers run on their
// own goroutines.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
	}
}
