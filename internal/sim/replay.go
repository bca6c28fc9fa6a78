package sim

import (
	"time"
)

// Replay generates what Sensors sensors at Rate readings a second with the
// given Anomalies would publish from start for d, without a broker or a
// wall clock, and calls emit for every reading in time order (sensors
// staggered as Run staggers them). Given the same Seed it produces the
// same readings. It exists so that alert detection can be tuned against an
// hour of the demo in a second (internal/alerts' replay test).
func Replay(cfg Config, start time.Time, d time.Duration, emit func(sensorID, metric string, ts time.Time, value float64)) {
	if cfg.Sensors <= 0 {
		cfg.Sensors = DefaultSensors
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	sensors := make([]*sensor, cfg.Sensors)
	for i := range sensors {
		sensors[i] = newSensor(i+1, uint64(cfg.Seed), DefaultPrefix, interval)
	}
	end := start.Add(d)
	for tick := start; tick.Before(end); tick = tick.Add(interval) {
		for i, sn := range sensors {
			now := tick.Add(time.Duration(float64(interval) * float64(i) / float64(len(sensors))))
			r, ok := sn.read(now, cfg.Anomalies)
			if !ok {
				continue
			}
			for j, g := range sn.gens {
				emit(sn.id, g.kind.metric(), r.ts, r.values[j])
			}
		}
	}
}
