package alerts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// summary is the part of a posted alert the tests compare.
func summary(a model.Alert) string {
	s := fmt.Sprintf("#%d %s %s %s n=%d v=%g", a.ID, a.Kind, a.State, a.Severity, a.Count, a.Value)
	if a.ResolvedBy != nil {
		s += " by=" + *a.ResolvedBy
	}
	return s
}

func summaries(as []model.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = summary(a)
	}
	return out
}

func wantPosts(t *testing.T, got []model.Alert, want ...string) {
	t.Helper()
	if g := summaries(got); !slices.Equal(g, want) {
		t.Errorf("posted:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestThreshold(t *testing.T) {
	const s = time.Second
	type step struct {
		dt     time.Duration
		values []float64
		tick   bool // run the stale check (flushes held-back updates) after the values
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"in range posts nothing", []step{{s, []float64{0, 5, 10}, false}}, nil},
		{"above max opens a warning", []step{{s, []float64{5, 11}, false}},
			[]string{"#1 threshold open warning n=1 v=11"}},
		{"below min", []step{{s, []float64{-0.5}, false}},
			[]string{"#1 threshold open warning n=1 v=-0.5"}},
		{"beyond the limit by more than 10% of the range is critical", []step{{s, []float64{11.5}, false}},
			[]string{"#1 threshold open critical n=1 v=11.5"}},
		{"repeated breaches update one alert, which shows the worst", []step{{2 * s, []float64{10.5, 11, 10.8}, false}},
			[]string{"#1 threshold open warning n=1 v=10.5", "#1 threshold open warning n=2 v=11", "#1 threshold open warning n=3 v=11"}},
		{"breaches within the update interval are coalesced", []step{{time.Millisecond, []float64{10.2, 10.5, 10.8, 10.3}, false}, {s, nil, true}},
			[]string{"#1 threshold open warning n=1 v=10.2", "#1 threshold open warning n=4 v=10.8"}},
		{"escalation is posted at once", []step{{time.Millisecond, []float64{11, 20}, false}},
			[]string{"#1 threshold open warning n=1 v=11", "#1 threshold open critical n=2 v=20"}},
		{"auto-resolves after 5 normal readings", []step{{s, []float64{11, 5, 5, 5, 5}, false}, {s, []float64{5}, false}},
			[]string{"#1 threshold open warning n=1 v=11", "#1 threshold resolved warning n=1 v=11 by=system"}},
		{"a breach restarts the count", []step{{s, []float64{11, 5, 5, 5, 5, 11, 5, 5, 5, 5}, false}},
			[]string{"#1 threshold open warning n=1 v=11", "#1 threshold open warning n=2 v=11"}},
		{"after resolving, a breach opens a new alert", []step{{s, []float64{11, 5, 5, 5, 5, 5, 10.6}, false}},
			[]string{"#1 threshold open warning n=1 v=11", "#1 threshold resolved warning n=1 v=11 by=system",
				"#2 threshold open warning n=1 v=10.6"}},
		{"a held-back update goes before the resolve", []step{{time.Millisecond, []float64{10.6, 10.7, 5, 5, 5, 5, 5}, false}},
			[]string{"#1 threshold open warning n=1 v=10.6", "#1 threshold open warning n=2 v=10.7",
				"#1 threshold resolved warning n=2 v=10.7 by=system"}},
		{"near the limit neither breaches nor counts as normal (hysteresis)", []step{{s, []float64{11, 9.9, 9.9, 9.9, 9.9, 9.9, 5, 5, 5, 5}, false}},
			[]string{"#1 threshold open warning n=1 v=11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil, nil)
			r.setRulesRaw("s-1",
				model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Enabled: true, Min: fp(0), Max: fp(10)},
				model.AlertRule{Metric: "temperature", Kind: model.RuleSpike, Enabled: false})
			for _, st := range tc.steps {
				r.read("s-1", "temperature", st.dt, st.values...)
				if st.tick {
					r.clock.add(st.dt)
					r.tick()
				}
			}
			wantPosts(t, r.poster.take(), tc.want...)
		})
	}
}

func TestThresholdOneSided(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rule     model.AlertRule
		value    float64
		want     string
		limit    float64
		critical bool
	}{
		{"max only, warning", model.AlertRule{Max: fp(100)}, 105, model.SeverityWarning, 100, false},
		{"max only, critical beyond 10% of |max|", model.AlertRule{Max: fp(100)}, 111, model.SeverityCritical, 100, true},
		{"min only", model.AlertRule{Min: fp(-20)}, -21, model.SeverityWarning, -20, false},
		{"limit 0 counts as 1", model.AlertRule{Max: fp(0)}, 0.2, model.SeverityCritical, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil, nil)
			tc.rule.Metric, tc.rule.Kind = "pressure", model.RuleThreshold
			r.setRules("p", tc.rule)
			r.read("p", "pressure", time.Second, tc.value)
			posts := r.poster.take()
			if len(posts) != 1 || posts[0].Severity != tc.want || posts[0].LimitOrScore != tc.limit {
				t.Errorf("posted %v; want one %s alert with limit %g", summaries(posts), tc.want, tc.limit)
			}
		})
	}
}

// steady returns n readings around 20 with a small, regular spread.
func steady(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 20 + 0.1*float64(i%3-1)
	}
	return out
}

func TestSpike(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int       // steady readings first
		then   []float64 // then these
		want   []string
	}{
		{"no spike during warm-up", 29, []float64{40}, nil},
		{"spike once warmed up", 30, []float64{21}, []string{"#1 spike open critical n=1 v=21"}},
		{"small deviation is normal", 60, []float64{20.2}, nil},
		{"beyond k but not 2k is a warning", 60, []float64{20.55}, []string{"#1 spike open warning n=1 v=20.55"}},
		{"auto-resolves after 5 normal readings", 60, append([]float64{30}, steady(5)...),
			[]string{"#1 spike open critical n=1 v=30", "#1 spike resolved critical n=1 v=30 by=system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil, nil)
			r.read("s-2", "temperature", time.Second, steady(tc.before)...)
			r.read("s-2", "temperature", time.Second, tc.then...)
			wantPosts(t, r.poster.take(), tc.want...)
		})
	}

	t.Run("k and warm-up from the rules", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r.setRules("s-3", model.AlertRule{Metric: "x", Kind: model.RuleSpike, K: fp(100), Warmup: ip(40)})
		r.read("s-3", "x", time.Second, steady(35)...)
		r.read("s-3", "x", time.Second, 1000) // within the warm-up of 40
		r.read("s-3", "x", time.Second, steady(100)...)
		r.read("s-3", "x", time.Second, 21) // about 15 sd off: under k=100
		wantPosts(t, r.poster.take())
	})

	t.Run("a lasting change of level becomes normal", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r.read("s-4", "x", time.Second, steady(60)...)
		shifted := make([]float64, 200)
		for i := range shifted {
			shifted[i] = 25 + 0.1*float64(i%3-1)
		}
		r.read("s-4", "x", time.Second, shifted...)
		posts := r.poster.take()
		if len(posts) == 0 || posts[0].State != model.AlertOpen || posts[len(posts)-1].State != model.AlertResolved {
			t.Errorf("posted %v; want the spike opened and, once the new level is learnt, resolved", summaries(posts))
		}
	})
}

func TestStale(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		rule     *model.AlertRule
		silent   []time.Duration // ticks at these times after the last reading
		want     []string
	}{
		{"not before 60 s", time.Second, nil, []time.Duration{30 * time.Second, 59 * time.Second}, nil},
		{"after 60 s", time.Second, nil, []time.Duration{61 * time.Second, 90 * time.Second},
			[]string{"#1 offline open warning n=1 v=61"}},
		{"10 × a slow interval", 10 * time.Second, nil, []time.Duration{61 * time.Second, 99 * time.Second, 101 * time.Second},
			[]string{"#1 offline open warning n=1 v=101"}},
		{"after_seconds from the rule", time.Second, &model.AlertRule{Kind: model.RuleStale, Enabled: true, AfterSeconds: fp(2)},
			[]time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond}, []string{"#1 offline open warning n=1 v=2.5"}},
		{"switched off", time.Second, &model.AlertRule{Kind: model.RuleStale, Enabled: false},
			[]time.Duration{time.Hour}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil, nil)
			if tc.rule != nil {
				rule := *tc.rule
				rule.Metric = "humidity"
				r.setRulesRaw("s-5", rule)
			}
			r.read("s-5", "humidity", tc.interval, steady(12)...)
			last := r.clock.Now()
			for _, d := range tc.silent {
				r.clock.add(last.Add(d).Sub(r.clock.Now()))
				r.tick()
			}
			wantPosts(t, r.poster.take(), tc.want...)
		})
	}

	t.Run("a reading resolves it, the next silence opens another", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r.read("s-6", "t", time.Second, steady(regularReadings)...)
		r.clock.add(61 * time.Second)
		r.tick()
		r.read("s-6", "t", time.Second, 20)
		r.clock.add(61 * time.Second)
		r.tick()
		wantPosts(t, r.poster.take(),
			"#1 offline open warning n=1 v=61",
			"#1 offline resolved warning n=1 v=61 by=system",
			"#2 offline open warning n=1 v=61")
	})

	t.Run("one dropout does not stretch the limit", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r.read("s-7", "t", time.Second, steady(20)...)
		r.read("s-7", "t", 50*time.Second, 20) // a 50 s gap, under the limit
		r.read("s-7", "t", time.Second, steady(3)...)
		r.clock.add(61 * time.Second)
		r.tick()
		wantPosts(t, r.poster.take(), "#1 offline open warning n=1 v=61")
	})
}

func TestManualLifecycle(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := context.Background()
	r.setRules("s-1", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
	r.read("s-1", "t", time.Second, 11)
	wantPosts(t, r.poster.take(), "#1 threshold open warning n=1 v=11")

	call := func(h func(context.Context, hubRequest) (string, any, error), data string) (string, any, error) {
		return h(ctx, hubRequest{user: "bob", data: data})
	}
	ack := wrap(r.d.HandleAck)
	resolve := wrap(r.d.HandleResolve)

	typ, data, err := call(ack, `{"alert_id":1}`)
	if err != nil || typ != ReplyType || data.(model.Alert).State != model.AlertAcknowledged || *data.(model.Alert).AckedBy != "bob" {
		t.Fatalf("ack: %s %+v %v", typ, data, err)
	}
	wantPosts(t, r.poster.take(), "#1 threshold acknowledged warning n=1 v=11")

	// Again: answered, not broadcast.
	if _, _, err := call(ack, `{"alert_id":"1"}`); err != nil {
		t.Errorf("second ack: %v", err)
	}
	wantPosts(t, r.poster.take())

	// Breaches still update the acknowledged alert.
	r.clock.add(2 * time.Second)
	r.read("s-1", "t", time.Second, 10.6)
	wantPosts(t, r.poster.take(), "#1 threshold acknowledged warning n=2 v=11")

	typ, data, err = call(resolve, `{"alert_id":1,"note":"  fan replaced  "}`)
	if err != nil || typ != ReplyType || data.(model.Alert).State != model.AlertResolved || data.(model.Alert).Note != "fan replaced" {
		t.Fatalf("resolve: %s %+v %v", typ, data, err)
	}
	wantPosts(t, r.poster.take(), "#1 threshold resolved warning n=2 v=11 by=bob")

	// Resolved by a user while the value is still out of range: the next
	// breach is a new alert.
	r.read("s-1", "t", time.Second, 10.9)
	wantPosts(t, r.poster.take(), "#2 threshold open warning n=1 v=10.9")

	// Resolved by a user while a held-back update is pending: that update
	// opens the next alert, which detection tracks and auto-resolves.
	r.clock.add(2 * time.Second)
	r.read("s-1", "t", time.Millisecond, 10.5) // update of #2, posted at once
	r.read("s-1", "t", time.Millisecond, 10.4) // held back
	wantPosts(t, r.poster.take(), "#2 threshold open warning n=2 v=10.9")
	if _, _, err := call(resolve, `{"alert_id":2}`); err != nil {
		t.Fatal(err)
	}
	wantPosts(t, r.poster.take(), "#2 threshold resolved warning n=2 v=10.9 by=bob")
	r.clock.add(2 * time.Second)
	r.tick()
	// It carries the worst value of the breaches it was held with.
	wantPosts(t, r.poster.take(), "#3 threshold open warning n=1 v=10.9")
	r.read("s-1", "t", time.Second, 5, 5, 5, 5, 5)
	wantPosts(t, r.poster.take(), "#3 threshold resolved warning n=1 v=10.9 by=system")

	for _, tc := range []struct {
		name     string
		h        func(context.Context, hubRequest) (string, any, error)
		data     string
		wantCode string
	}{
		{"ack of a resolved alert", ack, `{"alert_id":1}`, "conflict"},
		{"resolve of a resolved alert", resolve, `{"alert_id":1}`, "conflict"},
		{"unknown alert", ack, `{"alert_id":99}`, "not_found"},
		{"unknown alert, resolve", resolve, `{"alert_id":99}`, "not_found"},
		{"no alert_id", ack, `{}`, "bad_request"},
		{"alert_id zero", ack, `{"alert_id":0}`, "bad_request"},
		{"alert_id not a number", resolve, `{"alert_id":"x"}`, "bad_request"},
		{"alert_id fractional", ack, `{"alert_id":1.5}`, "bad_request"},
		{"data missing", ack, ``, "bad_request"},
		{"note too long", resolve, `{"alert_id":3,"note":"` + strings.Repeat("é", model.MaxAlertNote+1) + `"}`, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := call(tc.h, tc.data)
			if code := errCode(err); code != tc.wantCode {
				t.Errorf("error %v (code %q), want code %s", err, code, tc.wantCode)
			}
		})
	}
	wantPosts(t, r.poster.take())
	if got := testutil.ToFloat64(r.d.m.resolved.WithLabelValues("threshold", "warning", "user")); got != 2 {
		t.Errorf("resolved by user = %g, want 2", got)
	}
}

// A restarted detector resumes from the store: it neither opens live
// alerts again nor reports an outage twice, nor re-learns its statistics.
func TestRestartDoesNotRefire(t *testing.T) {
	st := newFakeStore()
	seen := t0.Add(-10 * time.Minute)
	mk := func(sensor, metric, kind, state string, opened time.Time) {
		st.alerts = append(st.alerts, model.Alert{ID: int64(len(st.alerts) + 1), SensorID: sensor, Metric: metric, Kind: kind,
			Severity: model.SeverityWarning, State: state, OpenedAt: opened, UpdatedAt: opened, Count: 3, Value: 1})
	}
	mk("hot", "t", model.AlertThreshold, model.AlertOpen, seen)                    // #1 live threshold
	mk("gone", "t", model.AlertOffline, model.AlertAcknowledged, seen)             // #2 live offline
	mk("quiet", "t", model.AlertOffline, model.AlertResolved, seen)                // #3 this outage, already reported and resolved
	mk("back", "t", model.AlertOffline, model.AlertResolved, seen.Add(-time.Hour)) // #4 an older outage
	st.rules["hot"] = []model.AlertRule{{SensorID: "hot", Metric: "t", Kind: model.RuleThreshold, Enabled: true, Max: fp(10)}}
	for _, s := range []string{"hot", "gone", "quiet", "back", "warm"} {
		sd := 0.1
		if s == "hot" {
			sd = 10 // its readings below are no spikes
		}
		st.stats = append(st.stats, model.SeriesStats{SensorID: s, Metric: "t", LastSeen: seen.Add(-time.Second),
			LastValue: 20, N: 50, Mean: 20, StdDev: sd, Span: 49 * time.Second})
	}
	st.lastSeq = 7 // the stats reflect every batch up to 7
	r := newRig(t, st, nil)

	// Nothing is opened at start.
	r.tick()
	wantPosts(t, r.poster.take())

	// A batch the stats reflect, arriving live, is not evaluated again.
	r.d.PublishReadings([]model.Reading{{SensorID: "hot", Metric: "t", Value: 50, TS: seen.Add(-time.Second), Seq: 7}})
	r.flush()
	wantPosts(t, r.poster.take())
	if got := testutil.ToFloat64(r.d.m.ignored.WithLabelValues(reasonEvaluated)); got != 1 {
		t.Errorf("ignored as already evaluated: %v, want 1", got)
	}

	// A new breach updates the live alert.
	r.read("hot", "t", time.Second, 11)
	wantPosts(t, r.poster.take(), "#1 threshold open warning n=4 v=11")
	// Normal readings resolve it: detection knew it was live.
	r.read("hot", "t", time.Second, 5, 5, 5, 5, 5)
	wantPosts(t, r.poster.take(), "#1 threshold resolved warning n=4 v=11 by=system")

	// Warmed up from the stored statistics: a spike fires at once.
	r.read("warm", "t", time.Second, 25)
	wantPosts(t, r.poster.take(), "#5 spike open critical n=1 v=25")

	// A reading ends the live offline alert.
	r.read("gone", "t", time.Second, 20)
	wantPosts(t, r.poster.take(), "#2 offline resolved warning n=3 v=1 by=system")

	// A minute later: "quiet" was already reported for this silence, so
	// only "back" (its last report predates its last reading) is new;
	// the sensors that just spoke are not stale yet.
	r.clock.add(t0.Add(61 * time.Second).Sub(r.clock.Now()))
	r.tick()
	wantPosts(t, r.poster.take(), "#6 offline open warning n=1 v=61")
	if a := r.store.all()[5]; a.SensorID != "back" {
		t.Errorf("offline alert for %s, want back", a.SensorID)
	}
}

// Readings of one sensor spread over a share group commit out of time
// order: each is evaluated once; an older one's breach counts, but it
// neither resolves nor moves the series' newest time; a batch that
// arrives a second time is not evaluated again.
func TestOutOfOrderReadingsAreEvaluatedOnce(t *testing.T) {
	st := newFakeStore()
	st.rules["s"] = []model.AlertRule{{SensorID: "s", Metric: "t", Kind: model.RuleThreshold, Enabled: true, Max: fp(10), ResolveAfter: ip(2)}}
	r := newRig(t, st, func(c *Config) { c.ThresholdOpenAfter = 3 })
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	r.clock.add(5 * time.Second)
	// Seconds 3, 1, 2 (two batches), then batch 2 again: three breaches
	// in a row open the alert, counted 3, not 2 (the older ones skipped)
	// nor 5 (the repeat counted).
	r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: 11, TS: at(3), Seq: 1}})
	r.d.PublishReadings([]model.Reading{
		{SensorID: "s", Metric: "t", Value: 12, TS: at(1), Seq: 2},
		{SensorID: "s", Metric: "t", Value: 13, TS: at(2), Seq: 2},
	})
	r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: 12, TS: at(1), Seq: 2}})
	r.flush()
	wantPosts(t, r.poster.take(), "#1 threshold open critical n=3 v=13")
	if got := testutil.ToFloat64(r.d.m.late); got != 2 {
		t.Errorf("evaluated out of time order: %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.d.m.ignored.WithLabelValues(reasonEvaluated)); got != 1 {
		t.Errorf("ignored as already evaluated: %v, want 1", got)
	}
	r.d.mu.Lock()
	last := r.d.series[seriesKey{"s", "t"}].lastTS
	r.d.mu.Unlock()
	if !last.Equal(at(3)) {
		t.Errorf("series' newest reading at %v, want %v", last, at(3))
	}
	// A normal reading older than the newest does not count towards
	// resolving it (ResolveAfter 2); the next two newer ones do.
	r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: 5, TS: at(2).Add(time.Millisecond), Seq: 3}})
	r.flush()
	wantPosts(t, r.poster.take())
	r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: 5, TS: at(4), Seq: 4}})
	r.flush()
	wantPosts(t, r.poster.take())
	r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: 5, TS: at(5), Seq: 5}})
	r.flush()
	wantPosts(t, r.poster.take(), "#1 threshold resolved critical n=3 v=13 by=system")
}

func TestReadingsBeforeLoadWait(t *testing.T) {
	st := newFakeStore()
	st.rules["s"] = []model.AlertRule{{SensorID: "s", Metric: "t", Kind: model.RuleThreshold, Enabled: true, Max: fp(10)}}
	c := &clock{t: t0}
	d := New(Config{Now: c.Now, MaxPending: 2}, st, &fakePoster{}, nil, prometheus.NewRegistry(), discard())
	d.PublishReadings([]model.Reading{
		{SensorID: "s", Metric: "t", Value: 11, TS: t0},
		{SensorID: "s", Metric: "t", Value: 12, TS: t0.Add(time.Second)},
		{SensorID: "s", Metric: "t", Value: 13, TS: t0.Add(2 * time.Second)}, // beyond MaxPending
	})
	if err := d.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.flush(context.Background())
	all := st.all()
	if len(all) != 1 || all[0].Count != 2 {
		t.Errorf("alerts %v; want one with the 2 held readings", summaries(all))
	}
	if got := testutil.ToFloat64(d.m.dropped.WithLabelValues(reasonNotReady)); got != 1 {
		t.Errorf("dropped not_ready = %g, want 1", got)
	}
}

func TestStoreFailuresAreRetried(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("s", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
	r.store.failing = 2
	r.read("s", "t", time.Second, 11) // open: stored on the third attempt (retry backoff 100, 200 ms)
	wantPosts(t, r.poster.take(), "#1 threshold open warning n=1 v=11")
	if got := testutil.ToFloat64(r.d.m.storeErrs); got != 2 {
		t.Errorf("store errors = %g, want 2", got)
	}
}

// While the store is down for long, the changes of one key stay bounded
// and what finally gets stored still ends in the right state.
func TestBacklogStaysBounded(t *testing.T) {
	r := newRig(t, nil, func(c *Config) { c.FlapOpens = 1000 }) // flapping would keep the last one open
	r.setRules("s", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10), ResolveAfter: ip(1)})
	for range 50 { // breach, resolve, breach, ... without the worker running
		for _, v := range []float64{11, 5} {
			now := r.clock.add(time.Second)
			r.d.PublishReadings([]model.Reading{{SensorID: "s", Metric: "t", Value: v, TS: now}})
		}
	}
	r.d.mu.Lock()
	n := len(r.d.series[seriesKey{"s", "t"}].kinds[kThreshold].ops)
	r.d.mu.Unlock()
	if n > maxOps+1 {
		t.Errorf("%d ops held for one key; want at most %d", n, maxOps+1)
	}
	r.flush()
	all := r.store.all()
	var total int64
	for _, a := range all {
		total += a.Count
		if a.State != model.AlertResolved {
			t.Errorf("alert %s left live", summary(a))
		}
	}
	if total != 50 {
		t.Errorf("breaches stored = %d, want 50", total)
	}
}

func TestRuleChangesApply(t *testing.T) {
	r := newRig(t, nil, nil)
	r.read("s", "t", time.Second, 50) // no rules: no threshold
	r.setRules("s", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
	r.read("s", "t", time.Second, 50)
	wantPosts(t, r.poster.take(), "#1 threshold open critical n=1 v=50")
	// Without the rule every reading is normal: the alert resolves itself.
	r.setRules("s")
	r.read("s", "t", time.Second, 50, 50, 50, 50, 50)
	wantPosts(t, r.poster.take(), "#1 threshold resolved critical n=1 v=50 by=system")

	if _, err := r.d.SetRules(context.Background(), "s", "olivia", []model.AlertRule{{Metric: "t", Kind: "nope"}}); err == nil {
		t.Error("SetRules accepted an unknown kind")
	}
}

func TestMaxSeries(t *testing.T) {
	r := newRig(t, nil, func(c *Config) { c.MaxSeries = 2 })
	r.d.PublishReadings([]model.Reading{
		{SensorID: "a", Metric: "t", TS: t0}, {SensorID: "b", Metric: "t", TS: t0}, {SensorID: "c", Metric: "t", TS: t0},
	})
	if got := testutil.ToFloat64(r.d.m.dropped.WithLabelValues(reasonTooManySeries)); got != 1 {
		t.Errorf("dropped too_many_series = %g, want 1", got)
	}
}

func TestPostFailureIsCounted(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("s", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
	r.poster.err = fmt.Errorf("no hub")
	r.read("s", "t", time.Second, 11)
	if got := testutil.ToFloat64(r.d.m.dropped.WithLabelValues(reasonPostFailed)); got != 1 {
		t.Errorf("dropped post_failed = %g, want 1", got)
	}
	if len(r.store.all()) != 1 {
		t.Error("the alert was not stored")
	}
}

func TestFold(t *testing.T) {
	var s series
	for _, v := range steady(2000) {
		s.fold(v)
	}
	// steady's values: 19.9, 20, 20.1 in turn; mean 20, variance 0.00667.
	if math.Abs(s.mean-20) > 0.01 || math.Abs(s.variance-0.02/3) > 0.002 {
		t.Errorf("mean %g variance %g; want about 20 and 0.0067", s.mean, s.variance)
	}
}

func TestAckOfAlertResolvedBySystem(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("s-1", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
	r.read("s-1", "t", time.Second, 11, 5, 5, 5, 5, 5)
	wantPosts(t, r.poster.take(), "#1 threshold open warning n=1 v=11", "#1 threshold resolved warning n=1 v=11 by=system")
	ack := wrap(r.d.HandleAck)
	_, data, err := ack(context.Background(), hubRequest{user: "ann", data: `{"alert_id":1}`})
	if err != nil {
		t.Fatalf("ack: %v", err)
	}
	if a := data.(model.Alert); a.State != model.AlertResolved || a.AckedBy == nil || *a.AckedBy != "ann" {
		t.Errorf("ack answered %s acked_by %v; want still resolved, acked by ann", summary(a), a.AckedBy)
	}
	wantPosts(t, r.poster.take(), "#1 threshold resolved warning n=1 v=11 by=system")
	if _, _, err := ack(context.Background(), hubRequest{user: "bob", data: `{"alert_id":1}`}); errCode(err) != "conflict" {
		t.Errorf("second ack: %v, want conflict", err)
	}
}
