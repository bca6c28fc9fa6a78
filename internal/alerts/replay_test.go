package alerts

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/sim"
)

// replayDemo drives a detector with the defaults through d of the demo's
// simulated readings (12 sensors at 1 reading a second, anomaly rate
// 0.01, as `watchroom demo` runs them) on the rig's clock, running the
// stale check every second, and returns the alerts it opened.
func replayDemo(t *testing.T, seed int64, d time.Duration) *rig {
	t.Helper()
	r := newRig(t, nil, func(c *Config) { c.SpikeOpenAfter, c.ThresholdOpenAfter = 0, 0 })
	start := r.clock.Now()
	nextTick := start.Add(time.Second)
	var batch []model.Reading
	sim.Replay(sim.Config{Sensors: 12, Rate: 1, Anomalies: 0.01, Seed: seed}, start, d,
		func(sensorID, metric string, ts time.Time, v float64) {
			for !ts.Before(nextTick) {
				r.d.PublishReadings(batch)
				batch = batch[:0]
				r.clock.add(nextTick.Sub(r.clock.Now()))
				r.tick()
				nextTick = nextTick.Add(time.Second)
			}
			batch = append(batch, model.Reading{SensorID: sensorID, Metric: metric, Value: v, TS: ts})
		})
	r.d.PublishReadings(batch)
	r.flush()
	return r
}

// TestReplayDemo replays an hour of the demo per seed in well under a
// second each and checks that the defaults raise a handful of alerts an
// hour, not hundreds. WATCHROOM_REPLAY_REPORT=1 prints the alerts.
//
//	go test -run ReplayDemo -v ./internal/alerts
func TestReplayDemo(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := replayDemo(t, seed, time.Hour)
			all := r.store.all()
			byKind := map[string]int{}
			flapping, flapped := 0, map[int64]bool{}
			for _, a := range all {
				byKind[a.Kind+"/"+a.Severity]++
			}
			for _, a := range r.poster.take() {
				if a.Note == "flapping" && !flapped[a.ID] {
					flapped[a.ID] = true
					flapping++
				}
			}
			t.Logf("seed %d: %d alerts in one hour %v, %d flapping", seed, len(all), byKind, flapping)
			if os.Getenv("WATCHROOM_REPLAY_REPORT") != "" {
				for _, a := range all {
					t.Logf("  %s %s/%s %s %s v=%g score=%g n=%d open %s", a.State, a.SensorID, a.Metric, a.Kind, a.Severity,
						a.Value, a.LimitOrScore, a.Count, a.OpenedAt.Sub(t0).Round(time.Second))
				}
			}
			if len(all) > 30 {
				t.Errorf("%d alerts in an hour of the demo; want a handful (at most 30; 426-474 before the anti-noise rules)", len(all))
			}
			if len(all) == 0 {
				t.Error("no alert in an hour of the demo: the dropouts should be reported")
			}
			for _, a := range all {
				if a.Kind == model.AlertSpike {
					want := model.SeverityWarning
					if a.LimitOrScore > 2*model.DefaultSpikeK {
						want = model.SeverityCritical
					}
					if a.Severity != want {
						t.Errorf("alert %d: severity %s with score %g; docs/alerts.md says %s", a.ID, a.Severity, a.LimitOrScore, want)
					}
				}
			}
		})
	}
}
