package alerts

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// The stale check reports only series that are watched: regular ones, ones
// with a stored stale rule, or any in registered mode.
func TestStaleWatchesOnlyRegularSeries(t *testing.T) {
	for _, tc := range []struct {
		name          string
		registered    bool
		rule          bool // a stored stale rule for the metric
		readings      int
		want          []string
		wantUnwatched float64
	}{
		{"one reading", false, false, 1, nil, 1},
		{"one short of regular", false, false, regularReadings - 1, nil, 1},
		{"regular", false, false, regularReadings, []string{"#1 offline open warning n=1 v=61"}, 0},
		{"a stored stale rule watches from the first reading", false, true, 1, []string{"#1 offline open warning n=1 v=61"}, 0},
		{"registered mode watches from the first reading", true, false, 1, []string{"#1 offline open warning n=1 v=61"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil, func(c *Config) { c.RegisteredOnly = tc.registered })
			if tc.rule {
				r.setRules("s-1", model.AlertRule{Metric: "t", Kind: model.RuleStale})
			}
			r.read("s-1", "t", time.Second, steady(tc.readings)...)
			r.clock.add(61 * time.Second)
			r.tick()
			r.clock.add(61 * time.Second)
			r.tick() // a silence is counted once
			wantPosts(t, r.poster.take(), tc.want...)
			if got := testutil.ToFloat64(r.d.m.unwatched); got != tc.wantUnwatched {
				t.Errorf("unwatched = %g, want %g", got, tc.wantUnwatched)
			}
		})
	}

	t.Run("2000 invented ids do not flood the alert room; a regular sensor among them is still reported", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r.read("real", "t", time.Second, steady(regularReadings)...)
		now := r.clock.Now()
		batch := make([]model.Reading, 2000)
		for i := range batch {
			batch[i] = model.Reading{SensorID: fmt.Sprintf("x-%d", i), Metric: "t", Value: 1, TS: now}
		}
		r.d.PublishReadings(batch)
		r.flush()
		r.clock.add(61 * time.Second)
		r.tick()
		posts := r.poster.take()
		if len(posts) != 1 || posts[0].SensorID != "real" || posts[0].Kind != model.AlertOffline {
			t.Errorf("posted %v; want the one offline alert of real", summaries(posts))
		}
		if got := testutil.ToFloat64(r.d.m.unwatched); got != 2000 {
			t.Errorf("unwatched = %g, want 2000", got)
		}
	})

	t.Run("after a restart, seeded statistics count", func(t *testing.T) {
		st := newFakeStore()
		for i, n := range []int64{regularReadings, 1} {
			st.stats = append(st.stats, model.SeriesStats{SensorID: fmt.Sprintf("s-%d", i), Metric: "t", LastSeen: t0.Add(-time.Second),
				LastValue: 20, N: n, Mean: 20, StdDev: 0.1, Span: time.Duration(n-1) * time.Second})
		}
		r := newRig(t, st, nil)
		r.clock.add(61 * time.Second)
		r.tick()
		posts := r.poster.take()
		if len(posts) != 1 || posts[0].SensorID != "s-0" {
			t.Errorf("posted %v; want s-0's offline alert only", summaries(posts))
		}
	})
}
