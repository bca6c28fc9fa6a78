package sim

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"
)

// Durations of the silences a sensor goes through.
const (
	rebootSilence    = 5 * time.Second
	minDropout       = 30 * time.Second
	maxDropout       = 90 * time.Second
	dropoutsPerSpike = 20               // a dropout is this many times rarer than a spike
	combinedEvery    = 5                // every 5th sensor publishes the combined form
	minInterval      = time.Millisecond // Rate up to 1000 readings/s per sensor
	maxInterval      = time.Hour
)

// sensor is one simulated device. It is owned by the run loop goroutine;
// only id and the fields set in newSensor are read elsewhere (the command
// handler reads id through the Simulator's immutable index).
type sensor struct {
	id       string
	num      int // 1-based, the N in s-N; breaks ties in the schedule
	gens     []*generator
	combined bool
	topic    string
	rng      *rand.Rand

	interval    time.Duration
	due         time.Time // next scheduled reading
	heapIndex   int
	silentUntil time.Time // dropout or reboot: no readings before this
	lastTS      time.Time // last timestamp published
}

// newSensor builds sensor number num (1-based). Its random source is
// derived from the seed and num alone, so its values do not depend on how
// the scheduler interleaves sensors.
func newSensor(num int, seed uint64, prefix string, interval time.Duration) *sensor {
	s := &sensor{
		id:       "s-" + strconv.Itoa(num),
		num:      num,
		rng:      rand.New(rand.NewPCG(seed, uint64(num))),
		interval: interval,
	}
	k := kind((num - 1) % int(numKinds))
	s.gens = []*generator{newGenerator(k, s.rng)}
	if num%combinedEvery == 0 {
		s.combined = true
		s.gens = append(s.gens, newGenerator(k.companion(), s.rng))
		s.topic = prefix + "/" + s.id
	} else {
		s.topic = prefix + "/" + s.id + "/" + k.metric()
	}
	return s
}

// reading is what a sensor measured at one instant.
type reading struct {
	ts     time.Time
	values []float64 // one per generator
}

// read produces the sensor's reading for now, or ok=false while it is
// silent. anomalies is the probability of a spike per reading; a dropout
// starts with anomalies/dropoutsPerSpike.
func (s *sensor) read(now time.Time, anomalies float64) (r reading, ok bool) {
	if now.Before(s.silentUntil) {
		return reading{}, false
	}
	if anomalies > 0 && s.rng.Float64() < anomalies/dropoutsPerSpike {
		s.silentUntil = now.Add(minDropout + time.Duration(s.rng.Int64N(int64(maxDropout-minDropout))))
		return reading{}, false
	}
	r.ts = s.nextTS(now)
	r.values = make([]float64, len(s.gens))
	for i, g := range s.gens {
		r.values[i] = g.next(s.rng, r.ts)
	}
	if anomalies > 0 && s.rng.Float64() < anomalies {
		i := s.rng.IntN(len(s.gens))
		r.values[i] = s.gens[i].spike(s.rng)
	}
	return r, true
}

// nextTS returns now in UTC at microsecond precision (what PostgreSQL
// keeps), moved past the previous timestamp if needed: the database key is
// (sensor, metric, ts), so equal timestamps would collide.
func (s *sensor) nextTS(now time.Time) time.Time {
	ts := now.UTC().Truncate(time.Microsecond)
	if !ts.After(s.lastTS) {
		ts = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = ts
	return ts
}

// Payload forms, as documented in docs/simulator.md.
type singlePayload struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	TS    string  `json:"ts"`
}

type combinedPayload struct {
	TS     string             `json:"ts"`
	Values map[string]float64 `json:"values"`
	Units  map[string]string  `json:"units"`
}

// encode returns the MQTT payload of r.
func (s *sensor) encode(r reading) ([]byte, error) {
	ts := r.ts.Format(time.RFC3339Nano)
	if !s.combined {
		return json.Marshal(singlePayload{Value: r.values[0], Unit: s.gens[0].kind.unit(), TS: ts})
	}
	p := combinedPayload{TS: ts, Values: make(map[string]float64, len(s.gens)), Units: make(map[string]string, len(s.gens))}
	for i, g := range s.gens {
		p.Values[g.kind.metric()] = r.values[i]
		p.Units[g.kind.metric()] = g.kind.unit()
	}
	return json.Marshal(p)
}

// schedule is a min-heap of sensors by next due time (container/heap).
type schedule []*sensor

func (h schedule) Len() int { return len(h) }
func (h schedule) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].num < h[j].num
	}
	return h[i].due.Before(h[j].due)
}
func (h schedule) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *schedule) Push(x any) {
	s := x.(*sensor)
	s.heapIndex = len(*h)
	*h = append(*h, s)
}
func (h *schedule) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
