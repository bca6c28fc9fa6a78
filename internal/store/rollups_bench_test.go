package store

import (
	"context"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// BenchmarkReadingBuckets7Days charts 7 days of a sensor that reports every
// second (604,800 readings) as GET /api/sensors/{id}/readings does: 1 h
// buckets from the hourly rollups, 10 m buckets from the minute rollups,
// and, for comparison, 10 m buckets from raw readings only (a width that
// is not a whole number of minutes takes that path). Run with
//
//	go test ./internal/store -run '^$' -bench ReadingBuckets7Days
func BenchmarkReadingBuckets7Days(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.EnsurePartitions(ctx, start, 8, start); err != nil {
		b.Fatalf("EnsurePartitions: %v", err)
	}
	const n = 7 * 24 * 3600
	batch := make([]model.Reading, 0, 5000)
	for i := range n {
		batch = append(batch, model.Reading{SensorID: "week", Metric: "temp", Unit: "C", TS: start.Add(time.Duration(i) * time.Second), Value: float64(i % 1000)})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := s.InsertReadings(ctx, batch); err != nil {
				b.Fatalf("InsertReadings: %v", err)
			}
			batch = batch[:0]
		}
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE readings, readings_1m, readings_1h`); err != nil {
		b.Fatalf("vacuum: %v", err)
	}
	end := start.Add(7*24*time.Hour - time.Second)
	for _, c := range []struct {
		name  string
		width time.Duration
	}{{"1h-rollups", time.Hour}, {"10m-rollups", 10 * time.Minute}, {"599s-raw", 599 * time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				bs, err := s.ReadingBuckets(ctx, "week", "temp", start, end, c.width, 5000)
				if err != nil || len(bs) == 0 {
					b.Fatalf("ReadingBuckets: %d buckets, %v", len(bs), err)
				}
			}
		})
	}
}
