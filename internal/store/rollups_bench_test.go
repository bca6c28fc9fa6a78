package store

import (
	"context"
	"fmt"
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
	ensureAllPartitions(b, s, start, 8)
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

// BenchmarkDiskPerMillionReadings stores 1,000,000 readings through
// InsertReadings (100 sensors with ids of 10 characters, one metric, one
// reading a second each, so 2 h 47 min of one day partition), vacuums, and
// reports the disk taken by the raw partition (heap, primary key, seq BRIN
// index) and by the rollups, per reading and per rollup row: the figures of
// docs/storage.md ("Disk use per million readings"). One iteration is the
// measurement; run it once:
//
//	go test ./internal/store -run '^$' -bench DiskPerMillionReadings -benchtime 1x
func BenchmarkDiskPerMillionReadings(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ensureAllPartitions(b, s, start, 0)
	const sensors, n = 100, 1_000_000
	for b.Loop() {
		batch := make([]model.Reading, 0, 5000)
		for i := range n {
			batch = append(batch, model.Reading{SensorID: fmt.Sprintf("sensor-%03d", i%sensors), Metric: "temp", Unit: "C",
				TS: start.Add(time.Duration(i/sensors) * time.Second), Value: 20 + float64(i%1000)/100})
			if len(batch) == cap(batch) {
				if _, err := s.InsertReadings(ctx, batch); err != nil {
					b.Fatalf("InsertReadings: %v", err)
				}
				batch = batch[:0]
			}
		}
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE readings, readings_1m, readings_1h`); err != nil {
		b.Fatalf("vacuum: %v", err)
	}
	var raw, m1, h1, m1Rows, h1Rows int64
	err := s.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('readings_p20260301'),
	pg_total_relation_size('readings_1m_p202603'), pg_total_relation_size('readings_1h_p2026'),
	(SELECT count(*) FROM readings_1m), (SELECT count(*) FROM readings_1h)`).Scan(&raw, &m1, &h1, &m1Rows, &h1Rows)
	if err != nil {
		b.Fatalf("sizes: %v", err)
	}
	b.ReportMetric(float64(raw)/n, "raw-B/reading")
	b.ReportMetric(float64(m1)/n, "1m-B/reading")
	b.ReportMetric(float64(h1)/n, "1h-B/reading")
	b.ReportMetric(float64(m1)/float64(m1Rows), "1m-B/row")
	b.ReportMetric(float64(h1)/float64(h1Rows), "1h-B/row")
	b.ReportMetric(float64(raw)/(1<<20), "raw-MiB")
	// The rollup rows of the current minute and hour are updated by every
	// batch: their partitions keep the room the old row versions took.
	// Packed, they show the live rows alone.
	if _, err := s.Pool().Exec(ctx, `VACUUM FULL readings_1m_p202603, readings_1h_p2026`); err != nil {
		b.Fatalf("vacuum full: %v", err)
	}
	err = s.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('readings_1m_p202603'), pg_total_relation_size('readings_1h_p2026')`).Scan(&m1, &h1)
	if err != nil {
		b.Fatalf("sizes: %v", err)
	}
	b.ReportMetric(float64(m1)/float64(m1Rows), "1m-B/row-packed")
	b.ReportMetric(float64(h1)/float64(h1Rows), "1h-B/row-packed")
}

// ensureAllPartitions creates, as the server's maintenance does, the
// readings partitions of start's day and days ahead after it, and the
// rollup partitions of start's month and year and the next ones: without
// them rows would go to the default partitions.
func ensureAllPartitions(b *testing.B, s *Store, start time.Time, days int) {
	b.Helper()
	ctx := context.Background()
	if _, err := s.EnsurePartitions(ctx, start, days, start); err != nil {
		b.Fatalf("EnsurePartitions: %v", err)
	}
	for _, kind := range []string{"1m", "1h"} {
		if _, err := s.EnsureRollupPartitions(ctx, kind, start, 1, start); err != nil {
			b.Fatalf("EnsureRollupPartitions: %v", err)
		}
	}
}
