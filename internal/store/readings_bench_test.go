package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// BenchmarkInsertReadings measures the ingest hot path: one InsertReadings
// call per iteration with a batch of new readings from 100 sensors with two
// metrics each, as the ingest batch writer sends them. Run with
//
//	go test ./internal/store -run '^$' -bench InsertReadings -benchtime 3s
func BenchmarkInsertReadings(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	runs := 0 // sub-benchmarks run again with -count; each run gets its own day
	// Partitions for those days, as the server creates them ahead.
	ensureAllPartitions(b, s, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 40)
	for _, size := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batch := make([]model.Reading, size)
			metrics := [2]string{"temp", "hum"}
			// Each iteration's readings are 1 ms later than the previous
			// iteration's, so every row is new and nothing is skipped.
			runs++
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, runs)
			for i := range batch {
				batch[i] = model.Reading{
					SensorID: fmt.Sprintf("bench-%d-s%03d", size, i%100),
					Metric:   metrics[(i/100)%2],
					Unit:     "u",
					TS:       base.Add(time.Duration(i/200) * time.Microsecond),
					Value:    float64(i),
				}
			}
			b.ReportAllocs()
			for iter := 0; b.Loop(); iter++ {
				shift := time.Duration(iter) * time.Millisecond
				for i := range batch {
					batch[i].TS = base.Add(shift + time.Duration(i/200)*time.Microsecond)
				}
				res, err := s.InsertReadings(ctx, batch)
				if err != nil {
					b.Fatalf("InsertReadings: %v", err)
				}
				if n := len(res.Fresh); n != size {
					b.Fatalf("inserted %d, want %d", n, size)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
