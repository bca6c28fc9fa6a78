package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

func rd(sensor, metric, unit string, seconds int, value float64) model.Reading {
	return model.Reading{SensorID: sensor, Metric: metric, Unit: unit, TS: at(seconds), Value: value}
}

func countReadings(t *testing.T, ctx context.Context, s *Store, sensor string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM readings WHERE sensor_id = $1`, sensor).Scan(&n); err != nil {
		t.Fatalf("count readings: %v", err)
	}
	return n
}

func sensorsOf(t *testing.T, ctx context.Context, s *Store, sensor string) []model.Sensor {
	t.Helper()
	all, err := s.Sensors(ctx)
	if err != nil {
		t.Fatalf("Sensors: %v", err)
	}
	var out []model.Sensor
	for _, x := range all {
		if x.ID == sensor {
			out = append(out, x)
		}
	}
	return out
}

func TestInsertReadings(t *testing.T) {
	s := newStore(t)
	// Each case uses its own sensor id ("s"), so the cases share one database.
	tests := []struct {
		name         string
		batches      [][]model.Reading
		wantInserted []int64
		wantRows     int
		wantSensors  []model.Sensor
	}{
		{
			name:         "empty batch",
			batches:      [][]model.Reading{nil},
			wantInserted: []int64{0},
		},
		{
			name: "new readings",
			batches: [][]model.Reading{{
				rd("s", "temp", "C", 0, 20), rd("s", "temp", "C", 1, 21), rd("s", "hum", "%", 0, 50),
			}},
			wantInserted: []int64{3},
			wantRows:     3,
			wantSensors: []model.Sensor{
				{Metric: "hum", Unit: "%", FirstSeen: at(0), LastSeen: at(0), LastValue: 50},
				{Metric: "temp", Unit: "C", FirstSeen: at(0), LastSeen: at(1), LastValue: 21},
			},
		},
		{
			name: "same batch twice counts once",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 0, 20), rd("s", "temp", "C", 1, 21)},
				{rd("s", "temp", "C", 0, 20), rd("s", "temp", "C", 1, 21)},
			},
			wantInserted: []int64{2, 0},
			wantRows:     2,
			wantSensors:  []model.Sensor{{Metric: "temp", Unit: "C", FirstSeen: at(0), LastSeen: at(1), LastValue: 21}},
		},
		{
			name: "duplicates inside one batch",
			batches: [][]model.Reading{{
				rd("s", "temp", "C", 0, 20), rd("s", "temp", "C", 0, 20), rd("s", "temp", "C", 2, 22), rd("s", "temp", "C", 2, 22),
			}},
			wantInserted: []int64{2},
			wantRows:     2,
			wantSensors:  []model.Sensor{{Metric: "temp", Unit: "C", FirstSeen: at(0), LastSeen: at(2), LastValue: 22}},
		},
		{
			name: "late old reading does not regress last value",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 10, 30)},
				{rd("s", "temp", "C", 0, 5)},
			},
			wantInserted: []int64{1, 1},
			wantRows:     2,
			wantSensors:  []model.Sensor{{Metric: "temp", Unit: "C", FirstSeen: at(0), LastSeen: at(10), LastValue: 30}},
		},
		{
			name: "newer batch moves last value, older readings in it do not matter",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 5, 30)},
				{rd("s", "temp", "C", 9, 39), rd("s", "temp", "C", 3, 33), rd("s", "temp", "C", 7, 37)},
			},
			wantInserted: []int64{1, 3},
			wantRows:     4,
			wantSensors:  []model.Sensor{{Metric: "temp", Unit: "C", FirstSeen: at(3), LastSeen: at(9), LastValue: 39}},
		},
		{
			name: "unit follows the latest reading but an empty unit keeps it",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 0, 20)},
				{rd("s", "temp", "F", 1, 70)},
				{rd("s", "temp", "", 2, 71)},
			},
			wantInserted: []int64{1, 1, 1},
			wantRows:     3,
			wantSensors:  []model.Sensor{{Metric: "temp", Unit: "F", FirstSeen: at(0), LastSeen: at(2), LastValue: 71}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			sensor := fmt.Sprintf("case-%d", i)
			for b, batch := range tt.batches {
				for j := range batch {
					batch[j].SensorID = sensor
				}
				res, err := s.InsertReadings(ctx, batch)
				fresh := res.Fresh
				if err != nil {
					t.Fatalf("batch %d: InsertReadings: %v", b, err)
				}
				if n := int64(len(fresh)); n != tt.wantInserted[b] {
					t.Errorf("batch %d: inserted = %d, want %d", b, n, tt.wantInserted[b])
				}
				// The new readings are the first occurrence of each new
				// key, in input order.
				seen := map[string]bool{}
				for _, r := range fresh {
					k := r.Metric + "@" + r.TS.String()
					if seen[k] {
						t.Errorf("batch %d: reading %s returned twice", b, k)
					}
					seen[k] = true
				}
			}
			if got := countReadings(t, ctx, s, sensor); got != tt.wantRows {
				t.Errorf("readings rows = %d, want %d", got, tt.wantRows)
			}
			got := sensorsOf(t, ctx, s, sensor)
			if len(got) != len(tt.wantSensors) {
				t.Fatalf("sensors = %+v, want %+v", got, tt.wantSensors)
			}
			for j, want := range tt.wantSensors {
				want.ID = sensor
				g := got[j]
				if g.ID != want.ID || g.Metric != want.Metric || g.Unit != want.Unit || g.LastValue != want.LastValue ||
					!g.FirstSeen.Equal(want.FirstSeen) || !g.LastSeen.Equal(want.LastSeen) {
					t.Errorf("sensor %d = %+v, want %+v", j, g, want)
				}
				if g.LastSeen.Location() != time.UTC {
					t.Errorf("sensor %d: LastSeen in %v, want UTC", j, g.LastSeen.Location())
				}
			}
		})
	}
}

func TestInsertReadingsConcurrentOverlappingBatches(t *testing.T) {
	// Two writers inserting the same keys in opposite orders, as when a
	// broker redelivers a batch while another worker holds it: both must
	// succeed (no deadlock) and every reading is stored once.
	s := newStore(t)
	ctx := testCtx(t)
	var fwd, rev []model.Reading
	for i := range 500 {
		fwd = append(fwd, rd(fmt.Sprintf("s%d", i%5), "temp", "C", i, float64(i)))
	}
	for i := len(fwd) - 1; i >= 0; i-- {
		rev = append(rev, fwd[i])
	}
	errs := make(chan error, 4)
	counts := make(chan int64, 4)
	for r := range 4 {
		batch := fwd
		if r%2 == 1 {
			batch = rev
		}
		go func() {
			res, err := s.InsertReadings(ctx, batch)
			counts <- int64(len(res.Fresh))
			errs <- err
		}()
	}
	var total int64
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("InsertReadings: %v", err)
		}
		total += <-counts
	}
	if total != int64(len(fwd)) {
		t.Errorf("inserted %d in total, want %d", total, len(fwd))
	}
}

func TestReadings(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	var batch []model.Reading
	for i := range 10 {
		batch = append(batch, rd("a", "temp", "C", i, float64(i)))
	}
	for i := range 5 {
		batch = append(batch, rd("a", "hum", "%", i, float64(100+i)))
	}
	batch = append(batch, rd("b", "temp", "C", 5, 555))
	if _, err := s.InsertReadings(ctx, batch); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}

	type r struct {
		metric string
		sec    int
		value  float64
	}
	tests := []struct {
		name     string
		sensor   string
		metric   string
		from, to int
		limit    int
		want     []r
	}{
		{"one metric, whole range", "a", "hum", -100, 100, 100,
			[]r{{"hum", 0, 100}, {"hum", 1, 101}, {"hum", 2, 102}, {"hum", 3, 103}, {"hum", 4, 104}}},
		{"limit keeps the newest, oldest first", "a", "temp", -100, 100, 3,
			[]r{{"temp", 7, 7}, {"temp", 8, 8}, {"temp", 9, 9}}},
		{"range bounds are inclusive", "a", "temp", 2, 4, 100,
			[]r{{"temp", 2, 2}, {"temp", 3, 3}, {"temp", 4, 4}}},
		{"all metrics, by ts then metric", "a", "", 3, 5, 100,
			[]r{{"hum", 3, 103}, {"temp", 3, 3}, {"hum", 4, 104}, {"temp", 4, 4}, {"temp", 5, 5}}},
		{"all metrics with limit", "a", "", 0, 100, 4,
			[]r{{"temp", 6, 6}, {"temp", 7, 7}, {"temp", 8, 8}, {"temp", 9, 9}}},
		{"other sensor", "b", "", -100, 100, 100, []r{{"temp", 5, 555}}},
		{"unknown sensor", "zzz", "", -100, 100, 100, nil},
		{"unknown metric", "a", "co2", -100, 100, 100, nil},
		{"empty range", "a", "temp", 20, 30, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings(ctx, tt.sensor, tt.metric, at(tt.from), at(tt.to), tt.limit)
			if err != nil {
				t.Fatalf("Readings: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d readings %+v, want %d %+v", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				wantUnit := map[string]string{"temp": "C", "hum": "%"}[w.metric]
				if g.SensorID != tt.sensor || g.Metric != w.metric || !g.TS.Equal(at(w.sec)) || g.Value != w.value || g.Unit != wantUnit {
					t.Errorf("reading %d = %+v, want %s %+v", i, g, tt.sensor, w)
				}
			}
		})
	}

	t.Run("limit must be positive", func(t *testing.T) {
		if _, err := s.Readings(ctx, "a", "temp", at(0), at(10), 0); err == nil {
			t.Error("Readings with limit 0 succeeded, want an error")
		}
	})
}

func TestReadingBuckets(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	// Two minutes of readings every 10 s: values 0..5 in the first minute,
	// 6..11 in the second.
	var batch []model.Reading
	for i := range 12 {
		batch = append(batch, rd("a", "temp", "C", 10*i, float64(i)))
	}
	batch = append(batch, rd("a", "hum", "%", 0, 1000)) // other metric must not leak in
	if _, err := s.InsertReadings(ctx, batch); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	tests := []struct {
		name     string
		from, to int
		bucket   time.Duration
		limit    int
		want     []model.Bucket
	}{
		{"two buckets", -1000, 1000, time.Minute, 10, []model.Bucket{
			{TS: at(0), Min: 0, Avg: 2.5, Max: 5, Count: 6},
			{TS: at(60), Min: 6, Avg: 8.5, Max: 11, Count: 6},
		}},
		{"limit keeps the newest", -1000, 1000, time.Minute, 1, []model.Bucket{
			{TS: at(60), Min: 6, Avg: 8.5, Max: 11, Count: 6},
		}},
		{"partial range, buckets stay aligned", 30, 70, time.Minute, 10, []model.Bucket{
			{TS: at(0), Min: 3, Avg: 4, Max: 5, Count: 3},
			{TS: at(60), Min: 6, Avg: 6.5, Max: 7, Count: 2},
		}},
		{"one bucket for everything", -1000, 1000, time.Hour, 10, []model.Bucket{
			{TS: at(0), Min: 0, Avg: 5.5, Max: 11, Count: 12},
		}},
		{"empty range", 500, 600, time.Minute, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ReadingBuckets(ctx, "a", "temp", at(tt.from), at(tt.to), tt.bucket, tt.limit)
			if err != nil {
				t.Fatalf("ReadingBuckets: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if !g.TS.Equal(w.TS) || g.Min != w.Min || g.Avg != w.Avg || g.Max != w.Max || g.Count != w.Count {
					t.Errorf("bucket %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}

	invalid := []struct {
		name   string
		metric string
		bucket time.Duration
		limit  int
	}{
		{"no metric", "", time.Minute, 10},
		{"zero bucket", "temp", 0, 10},
		{"sub-microsecond bucket", "temp", time.Nanosecond, 10},
		{"zero limit", "temp", time.Minute, 0},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.ReadingBuckets(ctx, "a", tt.metric, at(0), at(100), tt.bucket, tt.limit); err == nil {
				t.Error("ReadingBuckets succeeded, want an error")
			}
		})
	}
}

// TestInsertReadingsDuplicatesConflictsRestamps: a taken key means a
// duplicate (same value), a conflict (another value: the first committed
// stays) or, for a receipt-stamped reading, a move to a free microsecond.
func TestInsertReadingsDuplicatesConflictsRestamps(t *testing.T) {
	s := newStore(t)
	us := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }
	r := func(n int, v float64) model.Reading {
		return model.Reading{Metric: "temp", TS: us(n), Value: v}
	}
	rc := func(n int, v float64) model.Reading { x := r(n, v); x.Receipt = true; return x }
	type stored struct {
		n int
		v float64
	}
	tests := []struct {
		name          string
		before, batch []model.Reading
		wantFresh     []stored // ts (µs) and value of Fresh, in order
		wantDup       int
		wantConflicts []stored // offered ts and stored value
		wantRestamped int
		wantRows      []stored
	}{
		{
			name:      "redelivery is a duplicate",
			before:    []model.Reading{r(0, 1)},
			batch:     []model.Reading{r(0, 1), r(1, 2)},
			wantFresh: []stored{{1, 2}}, wantDup: 1,
			wantRows: []stored{{0, 1}, {1, 2}},
		},
		{
			name:          "other value under a stored key is a conflict; the stored one stays",
			before:        []model.Reading{r(0, 1)},
			batch:         []model.Reading{r(0, 5)},
			wantConflicts: []stored{{0, 1}},
			wantRows:      []stored{{0, 1}},
		},
		{
			name:          "within one batch the first received wins",
			batch:         []model.Reading{r(0, 7), r(0, 8), r(0, 7), r(1, 1)},
			wantFresh:     []stored{{0, 7}, {1, 1}},
			wantDup:       1,
			wantConflicts: []stored{{0, 7}},
			wantRows:      []stored{{0, 7}, {1, 1}},
		},
		{
			name:          "receipt-stamped readings are never merged: moved past taken keys",
			before:        []model.Reading{r(0, 1), r(1, 1), r(3, 1)},
			batch:         []model.Reading{rc(0, 1), rc(0, 2), rc(1, 3), r(3, 1)},
			wantFresh:     []stored{{2, 1}, {4, 2}, {5, 3}},
			wantDup:       1,
			wantRestamped: 3,
			wantRows:      []stored{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 2}, {5, 3}},
		},
		{
			name:          "a receipt-stamped reading yields its key to a device-stamped one",
			batch:         []model.Reading{r(0, 1), rc(0, 2)},
			wantFresh:     []stored{{0, 1}, {1, 2}},
			wantRestamped: 1,
			wantRows:      []stored{{0, 1}, {1, 2}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			sensor := fmt.Sprintf("taken-%d", i)
			for _, b := range [][]model.Reading{tt.before, tt.batch} {
				for j := range b {
					b[j].SensorID = sensor
				}
			}
			if _, err := s.InsertReadings(ctx, tt.before); err != nil {
				t.Fatalf("InsertReadings(before): %v", err)
			}
			in := slices.Clone(tt.batch)
			res, err := s.InsertReadings(ctx, tt.batch)
			if err != nil {
				t.Fatalf("InsertReadings: %v", err)
			}
			if !slices.EqualFunc(in, tt.batch, func(a, b model.Reading) bool { return a == b }) {
				t.Errorf("InsertReadings modified its input")
			}
			var fresh []stored
			for _, f := range res.Fresh {
				fresh = append(fresh, stored{int(f.TS.Sub(t0).Microseconds()), f.Value})
			}
			if !slices.Equal(fresh, tt.wantFresh) {
				t.Errorf("fresh = %v, want %v", fresh, tt.wantFresh)
			}
			var conflicts []stored
			for _, c := range res.Conflicts {
				conflicts = append(conflicts, stored{int(c.Reading.TS.Sub(t0).Microseconds()), c.Stored})
			}
			if !slices.Equal(conflicts, tt.wantConflicts) {
				t.Errorf("conflicts = %v, want %v", conflicts, tt.wantConflicts)
			}
			if res.Duplicates != tt.wantDup || res.Restamped != tt.wantRestamped {
				t.Errorf("duplicates, restamped = %d, %d, want %d, %d", res.Duplicates, res.Restamped, tt.wantDup, tt.wantRestamped)
			}
			rows, err := s.Readings(ctx, sensor, "temp", t0.Add(-time.Hour), t0.Add(time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []stored
			for _, r := range rows {
				got = append(got, stored{int(r.TS.Sub(t0).Microseconds()), r.Value})
			}
			if !slices.Equal(got, tt.wantRows) {
				t.Errorf("rows = %v, want %v", got, tt.wantRows)
			}
			// sensors.last_* follow the row stored last.
			last := tt.wantRows[len(tt.wantRows)-1]
			sn := sensorsOf(t, ctx, s, sensor)
			if len(sn) != 1 || !sn[0].LastSeen.Equal(us(last.n)) || sn[0].LastValue != last.v {
				t.Errorf("sensors = %+v, want last %v", sn, last)
			}
		})
	}
}

// TestInsertReadingsReceiptBurstAfterRestart: a new instance (or one whose
// clock went back) stamps a burst with the very stamps already stored;
// every reading is stored, none merged.
func TestInsertReadingsReceiptBurstAfterRestart(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	batch := func(v float64) []model.Reading {
		rs := make([]model.Reading, 5000)
		for i := range rs {
			rs[i] = model.Reading{SensorID: "burst", Metric: "m", Value: v, Receipt: true,
				TS: t0.Add(time.Duration(i) * time.Microsecond)}
		}
		return rs
	}
	for run, v := range []float64{1, 2} {
		res, err := s.InsertReadings(ctx, batch(v))
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if len(res.Fresh) != 5000 || res.Duplicates != 0 || len(res.Conflicts) != 0 {
			t.Fatalf("run %d: %d fresh, %d duplicates, %d conflicts; want 5000 fresh", run, len(res.Fresh), res.Duplicates, len(res.Conflicts))
		}
		for i := 1; i < len(res.Fresh); i++ {
			if !res.Fresh[i].TS.After(res.Fresh[i-1].TS) {
				t.Fatalf("run %d: stamps not increasing at %d: %v, %v", run, i, res.Fresh[i-1].TS, res.Fresh[i].TS)
			}
		}
	}
	if n := countReadings(t, ctx, s, "burst"); n != 10000 {
		t.Fatalf("%d rows, want 10000", n)
	}
}
