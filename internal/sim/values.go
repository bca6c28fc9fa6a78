package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// kind is what a simulated sensor measures.
type kind int

const (
	kindTemperature kind = iota
	kindHumidity
	kindPressure
	kindVibration
	numKinds
)

func (k kind) metric() string {
	switch k {
	case kindTemperature:
		return "temperature"
	case kindHumidity:
		return "humidity"
	case kindPressure:
		return "pressure"
	default:
		return "vibration"
	}
}

func (k kind) unit() string {
	switch k {
	case kindTemperature:
		return "°C"
	case kindHumidity:
		return "%"
	case kindPressure:
		return "hPa"
	default:
		return "mm/s"
	}
}

// normalRange is the closed interval every reading of kind k stays in when
// no anomaly is injected; spikes land outside it. docs/simulator.md quotes
// these numbers.
func (k kind) normalRange() (lo, hi float64) {
	switch k {
	case kindTemperature:
		return 15, 27
	case kindHumidity:
		return 30, 70
	case kindPressure:
		return 1000, 1026
	default:
		return 0, 15
	}
}

// companion is the second metric a combined-form sensor reports.
func (k kind) companion() kind {
	if k == kindTemperature {
		return kindHumidity
	}
	return kindTemperature
}

// generator produces one metric's values for one sensor. It is not safe for
// concurrent use; the run loop owns it.
type generator struct {
	kind   kind
	offset float64 // this sensor's fixed bias from the kind's base value
	phase  float64 // this sensor's shift of the daily cycle, radians
	drift  float64 // slow random walk; calibration resets it
	walk   float64 // pressure only: weather-like random walk, not drift
	burst  int     // vibration only: readings left in the current burst
}

// Bounds of the random walks; together with the other terms they keep
// values inside normalRange.
const (
	maxDrift = 1.0 // in the metric's unit, for temperature and humidity
	maxWalk  = 9.0
)

func newGenerator(k kind, r *rand.Rand) *generator {
	g := &generator{kind: k, phase: (r.Float64() - 0.5) * 0.5}
	switch k {
	case kindTemperature:
		g.offset = (r.Float64() - 0.5) * 1.0 // ±0.5 °C
	case kindHumidity:
		g.offset = (r.Float64() - 0.5) * 6.0 // ±3 %
	case kindPressure:
		g.offset = (r.Float64() - 0.5) * 4.0 // ±2 hPa
	case kindVibration:
		g.offset = 0.8 + r.Float64()*0.7 // resting level 0.8-1.5 mm/s
	}
	return g
}

// dayCycle is a sine wave over one UTC day, from -1 to 1, peaking at
// 15:00 UTC (shifted by the sensor's phase): the daily temperature swing.
func dayCycle(t time.Time, phase float64) float64 {
	h, m, s := t.UTC().Clock()
	day := (float64(h*3600+m*60+s) + float64(t.Nanosecond())/1e9) / 86400
	return math.Cos(2*math.Pi*(day-0.625) + phase)
}

// noise is normally distributed with standard deviation sd, clipped to
// three of them so that ranges can be guaranteed.
func noise(r *rand.Rand, sd float64) float64 {
	return clamp(r.NormFloat64()*sd, -3*sd, 3*sd)
}

// next returns a normal reading at time t, rounded to 2 decimals.
func (g *generator) next(r *rand.Rand, t time.Time) float64 {
	var v float64
	switch g.kind {
	case kindTemperature:
		g.drift = clamp(g.drift+noise(r, 0.01), -maxDrift, maxDrift)
		// 21 ±0.5 offset ±3 daily ±1 drift ±0.45 noise: within 16-26.
		v = 21 + g.offset + 3*dayCycle(t, g.phase) + g.drift + noise(r, 0.15)
	case kindHumidity:
		g.drift = clamp(g.drift+noise(r, 0.02), -2*maxDrift, 2*maxDrift)
		// Humidity falls as the day warms: 50 ±3 ±12 ±2 ±1.5.
		v = 50 + g.offset - 12*dayCycle(t, g.phase) + g.drift + noise(r, 0.5)
	case kindPressure:
		g.walk = clamp(g.walk+noise(r, 0.05), -maxWalk, maxWalk)
		g.drift = clamp(g.drift+noise(r, 0.005), -maxDrift, maxDrift)
		// 1013 ±2 offset ±9 weather ±1 drift ±0.3 noise: within 1000-1026.
		v = 1013 + g.offset + g.walk + g.drift + noise(r, 0.1)
	case kindVibration:
		if g.burst == 0 && r.Float64() < 0.02 {
			g.burst = 3 + r.IntN(8)
		}
		g.drift = clamp(g.drift+noise(r, 0.005), -0.3, 0.3)
		if g.burst > 0 {
			g.burst--
			v = 4 + 8*r.Float64() // a machine running rough: 4-12 mm/s
		} else {
			v = g.offset + g.drift + math.Abs(noise(r, 0.3))
		}
	}
	lo, hi := g.kind.normalRange()
	return round2(clamp(v, lo, hi))
}

// spike returns an anomalous reading, well outside normalRange.
func (g *generator) spike(r *rand.Rand) float64 {
	up := r.IntN(2) == 0
	var v float64
	switch g.kind {
	case kindTemperature:
		v = 20 + 10*r.Float64() // 20-30 °C away from 21
		if up {
			v = 21 + v
		} else {
			v = 21 - v
		}
	case kindHumidity:
		v = 5 * r.Float64()
		if up {
			v = 100 - v
		}
	case kindPressure:
		v = 60 + 40*r.Float64()
		if up {
			v = 1013 + v
		} else {
			v = 1013 - v
		}
	case kindVibration:
		v = 40 + 40*r.Float64()
	}
	return round2(v)
}

// calibrate removes the accumulated drift, as a device calibration would.
func (g *generator) calibrate() { g.drift = 0 }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }
