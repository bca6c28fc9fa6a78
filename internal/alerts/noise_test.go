package alerts

import (
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// defaultsRig is a rig with the anti-noise defaults (newRig opens on the
// first breach for the mechanics tests).
func defaultsRig(t *testing.T, edit func(*Config)) *rig {
	return newRig(t, nil, func(c *Config) {
		c.SpikeOpenAfter, c.ThresholdOpenAfter = 0, 0
		if edit != nil {
			edit(c)
		}
	})
}

func TestNoise(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		then []float64 // after 60 steady readings, 1 s apart
		want []string
	}{
		{"one odd reading opens nothing", nil, append([]float64{30}, steady(10)...), nil},
		{"two odd readings open nothing", nil, append([]float64{30, 30}, steady(10)...), nil},
		{"three in a row open one alert counting all three", nil, []float64{30, 31, 30},
			[]string{"#1 spike open critical n=3 v=30"}}, // the worst score: 30 came first, before the spread widened
		{"an interruption restarts the count", nil, []float64{30, 30, 20, 30, 30}, nil},
		{"OpenFor: the breach must also last long enough", func(c *Config) { c.OpenFor = 4 * time.Second },
			[]float64{30, 30, 30, 30, 30}, []string{"#1 spike open critical n=5 v=30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := defaultsRig(t, tc.edit)
			r.read("s-1", "x", time.Second, steady(60)...)
			r.read("s-1", "x", time.Second, tc.then...)
			wantPosts(t, r.poster.take(), tc.want...)
		})
	}

	t.Run("ThresholdOpenAfter 2 needs two readings in a row", func(t *testing.T) {
		r := defaultsRig(t, func(c *Config) { c.ThresholdOpenAfter = 2 })
		r.setRules("s-1", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
		r.read("s-1", "t", time.Second, 11, 5, 11, 10.5)
		wantPosts(t, r.poster.take(), "#1 threshold open warning n=2 v=11")
	})

	t.Run("severity matches the score shown", func(t *testing.T) {
		r := defaultsRig(t, nil)
		r.read("s-1", "x", time.Second, steady(60)...)
		// 20.6 is ~7 sd off (warning), 25 far beyond 2k (critical), then
		// a warning-sized breach: the alert keeps the critical score.
		r.read("s-1", "x", time.Second, 20.6, 25, 25, 20.6)
		r.clock.add(2 * time.Second)
		r.tick()
		posts := r.poster.take()
		if len(posts) == 0 {
			t.Fatal("no alert")
		}
		for _, a := range posts {
			crit := a.LimitOrScore > 2*model.DefaultSpikeK
			if (a.Severity == model.SeverityCritical) != crit {
				t.Errorf("posted %s with score %g", summary(a), a.LimitOrScore)
			}
		}
		if last := posts[len(posts)-1]; last.Severity != model.SeverityCritical || last.Value != 25 {
			t.Errorf("last post %s; want critical showing the worst reading, 25", summary(last))
		}
	})

	t.Run("hysteresis: a score just under k does not resolve", func(t *testing.T) {
		r := defaultsRig(t, nil)
		r.read("s-1", "x", time.Second, steady(60)...)
		r.read("s-1", "x", time.Second, 21, 21, 21)
		wantPosts(t, r.poster.take(), "#1 spike open critical n=3 v=21")
		r.d.mu.Lock()
		s := r.d.series[seriesKey{"s-1", "x"}]
		sd := s.variance
		mean := s.mean
		r.d.mu.Unlock()
		// 0.9 k: neither a breach nor normal, however many there are.
		near := mean + 0.9*model.DefaultSpikeK*sqrt(sd)
		r.read("s-1", "x", time.Millisecond, near)
		r.d.mu.Lock()
		ks := s.kinds[kSpike]
		r.d.mu.Unlock()
		if !ks.live || ks.normal != 0 {
			t.Errorf("after a reading at 0.9 k: live %v normal %d; want live, no normal streak", ks.live, ks.normal)
		}
	})

	t.Run("flapping is kept open, marked, and resolves once quiet", func(t *testing.T) {
		r := defaultsRig(t, func(c *Config) { c.ThresholdOpenAfter = 2 })
		r.setRules("s-1", model.AlertRule{Metric: "t", Kind: model.RuleThreshold, Max: fp(10)})
		burst := []float64{11, 11, 5, 5, 5, 5, 5}
		for range 3 { // three opens within a minute
			r.read("s-1", "t", time.Second, burst...)
		}
		posts := r.poster.take()
		var opened, resolved, flagged int
		for _, a := range posts {
			switch {
			case a.Note == "flapping" && a.State == model.AlertOpen:
				flagged++
			case a.State == model.AlertResolved:
				resolved++
			case a.Count == 2:
				opened++
			}
		}
		if opened != 3 || resolved != 2 || flagged != 1 {
			t.Errorf("opened %d resolved %d flagged %d, want 3, 2, 1: %v", opened, resolved, flagged, summaries(posts))
		}
		// More bursts fold into the flapping alert.
		r.read("s-1", "t", time.Second, burst...)
		for _, a := range r.poster.take() {
			if a.ID != 3 || a.State != model.AlertOpen {
				t.Errorf("posted %s; want updates of the flapping #3", summary(a))
			}
		}
		// Quiet for FlapQuiet: resolved, flapping flag on the resolve.
		r.read("s-1", "t", 30*time.Second, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5)
		posts = r.poster.take()
		if len(posts) != 1 || posts[0].State != model.AlertResolved || posts[0].ID != 3 || posts[0].Note != "flapping" {
			t.Errorf("after 10 quiet minutes posted %v; want #3 resolved", summaries(posts))
		}
	})
}

func sqrt(v float64) float64 {
	x := v
	for range 50 {
		if x == 0 {
			return 0
		}
		x = (x + v/x) / 2
	}
	return x
}
