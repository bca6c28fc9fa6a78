package sim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var kindsUnderTest = []kind{kindTemperature, kindHumidity, kindPressure, kindVibration}

func isTwoDecimals(v float64) bool {
	return math.Abs(v*100-math.Round(v*100)) < 1e-6
}

func TestGeneratorStaysInNormalRange(t *testing.T) {
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range kindsUnderTest {
		t.Run(k.metric(), func(t *testing.T) {
			lo, hi := k.normalRange()
			for seed := uint64(1); seed <= 5; seed++ {
				r := rand.New(rand.NewPCG(seed, 7))
				g := newGenerator(k, r)
				var low, bursts int
				// 20000 readings spread over two days, so the daily cycle
				// and the random walks are exercised.
				for i := range 20000 {
					ts := start.Add(time.Duration(i) * 8640 * time.Millisecond)
					v := g.next(r, ts)
					if v < lo || v > hi {
						t.Fatalf("seed %d reading %d = %v outside [%v, %v]", seed, i, v, lo, hi)
					}
					if !isTwoDecimals(v) {
						t.Fatalf("reading %v is not rounded to 2 decimals", v)
					}
					if v < 3 {
						low++
					}
					if v >= 4 {
						bursts++
					}
				}
				if k == kindVibration {
					// Mostly low, with bursts.
					if low < 15000 || bursts == 0 {
						t.Fatalf("vibration: %d low readings and %d in bursts of 20000, want mostly low with some bursts", low, bursts)
					}
				}
			}
		})
	}
}

func TestTemperatureFollowsTheDay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	g := newGenerator(kindTemperature, r)
	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	mean := func(hour int) float64 {
		var sum float64
		for i := range 200 {
			sum += g.next(r, day.Add(time.Duration(hour)*time.Hour+time.Duration(i)*time.Second))
		}
		return sum / 200
	}
	afternoon, night := mean(15), mean(3)
	if afternoon-night < 4 {
		t.Fatalf("15:00 mean %.2f, 03:00 mean %.2f: want a daily swing of about 6 °C", afternoon, night)
	}
}

func TestSpikesAreOutsideNormalRange(t *testing.T) {
	for _, k := range kindsUnderTest {
		t.Run(k.metric(), func(t *testing.T) {
			lo, hi := k.normalRange()
			r := rand.New(rand.NewPCG(3, 3))
			g := newGenerator(k, r)
			for range 2000 {
				v := g.spike(r)
				if v >= lo && v <= hi {
					t.Fatalf("spike %v inside normal range [%v, %v]", v, lo, hi)
				}
				if !isTwoDecimals(v) {
					t.Fatalf("spike %v is not rounded to 2 decimals", v)
				}
			}
		})
	}
}

func TestSameSeedSameValues(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	series := func(seed uint64, num int) [][]float64 {
		s := newSensor(num, seed, "sensors", time.Second)
		var out [][]float64
		for i := range 500 {
			r, ok := s.read(now.Add(time.Duration(i)*time.Second), 0.05)
			if ok {
				out = append(out, r.values)
			}
		}
		return out
	}
	for _, num := range []int{1, 4, 5} {
		a, b := series(42, num), series(42, num)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("sensor %d: two runs with seed 42 differ", num)
		}
		if reflect.DeepEqual(a, series(43, num)) {
			t.Fatalf("sensor %d: seeds 42 and 43 gave the same values", num)
		}
	}
	if reflect.DeepEqual(series(42, 1), series(42, 2)) {
		t.Fatalf("sensors 1 and 2 gave the same values")
	}
}

func TestTimestampsStrictlyIncrease(t *testing.T) {
	s := newSensor(1, 1, "sensors", time.Second)
	base := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	// The clock stands still, goes back, then moves on by less than a
	// microsecond: every timestamp must still be later than the last.
	clock := []time.Time{base, base, base.Add(-time.Second), base.Add(300 * time.Nanosecond), base.Add(time.Millisecond)}
	var last time.Time
	for i, now := range clock {
		r, ok := s.read(now, 0)
		if !ok {
			t.Fatalf("read %d: sensor silent", i)
		}
		if !r.ts.After(last) {
			t.Fatalf("read %d: ts %v not after %v", i, r.ts, last)
		}
		if r.ts.Location() != time.UTC || r.ts.Nanosecond()%1000 != 0 {
			t.Fatalf("read %d: ts %v not UTC at microsecond precision", i, r.ts)
		}
		last = r.ts
	}
	if got, want := last, base.Add(time.Millisecond).UTC().Truncate(time.Microsecond); !got.Equal(want) {
		t.Fatalf("last ts %v, want %v (back to the clock)", got, want)
	}
}

func TestAnomalies(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	count := func(anomalies float64) (spikes, dropouts int) {
		s := newSensor(1, 9, "sensors", time.Second)
		lo, hi := kindTemperature.normalRange()
		for i := range 20000 {
			at := now.Add(time.Duration(i) * time.Second)
			wasSilent := at.Before(s.silentUntil)
			r, ok := s.read(at, anomalies)
			switch {
			case !ok && !wasSilent:
				dropouts++
				if d := s.silentUntil.Sub(at); d < minDropout || d > maxDropout {
					t.Fatalf("dropout of %v, want 30-90 s", d)
				}
			case ok && (r.values[0] < lo || r.values[0] > hi):
				spikes++
			}
		}
		return spikes, dropouts
	}
	if s, d := count(0); s != 0 || d != 0 {
		t.Fatalf("anomalies 0: %d spikes, %d dropouts; want none", s, d)
	}
	if s, d := count(0.05); s == 0 || d == 0 || d > s {
		t.Fatalf("anomalies 0.05: %d spikes, %d dropouts; want both, dropouts rarer", s, d)
	}
}

func TestSensorLayout(t *testing.T) {
	tests := []struct {
		num     int
		topic   string
		metrics []string
	}{
		{1, "sensors/s-1/temperature", []string{"temperature"}},
		{2, "sensors/s-2/humidity", []string{"humidity"}},
		{3, "sensors/s-3/pressure", []string{"pressure"}},
		{4, "sensors/s-4/vibration", []string{"vibration"}},
		{5, "sensors/s-5", []string{"temperature", "humidity"}},
		{6, "sensors/s-6/humidity", []string{"humidity"}},
		{10, "sensors/s-10", []string{"humidity", "temperature"}},
		{15, "sensors/s-15", []string{"pressure", "temperature"}},
		{20, "sensors/s-20", []string{"vibration", "temperature"}},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			s := newSensor(tt.num, 1, "sensors", time.Second)
			if s.topic != tt.topic {
				t.Fatalf("topic %q, want %q", s.topic, tt.topic)
			}
			var got []string
			for _, g := range s.gens {
				got = append(got, g.kind.metric())
			}
			if !reflect.DeepEqual(got, tt.metrics) {
				t.Fatalf("metrics %v, want %v", got, tt.metrics)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	ts := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
	single := newSensor(1, 1, "sensors", time.Second)
	got, err := single.encode(reading{ts: ts, values: []float64{23.41}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"value":23.41,"unit":"°C","ts":"2025-06-01T12:00:00.123456Z"}`; string(got) != want {
		t.Fatalf("single form %s, want %s", got, want)
	}
	combined := newSensor(5, 1, "sensors", time.Second)
	got, err = combined.encode(reading{ts: ts, values: []float64{21.5, 40}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ts":"2025-06-01T12:00:00.123456Z","values":{"humidity":40,"temperature":21.5},"units":{"humidity":"%","temperature":"°C"}}`
	if string(got) != want {
		t.Fatalf("combined form %s, want %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("invalid JSON %s", got)
	}
}
