package alerts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
)

// BenchmarkPublishReadings measures what detection adds to the ingest
// goroutine per reading: batches of 1000 normal readings spread over 100
// or 10,000 series with default rules (spike and stale), every series
// warmed up. Reported as ns per reading.
func BenchmarkPublishReadings(b *testing.B) {
	for _, nSeries := range []int{100, 10000} {
		b.Run(fmt.Sprintf("series=%d", nSeries), func(b *testing.B) {
			c := &clock{t: t0}
			d := New(Config{Now: c.Now}, newFakeStore(), &fakePoster{}, nil, prometheus.NewRegistry(), discard())
			if err := d.load(context.Background()); err != nil {
				b.Fatal(err)
			}
			const batch = 1000
			ts := t0
			seq := 0
			mk := func() []model.Reading {
				rs := make([]model.Reading, batch)
				for i := range rs {
					ts = ts.Add(time.Millisecond)
					seq++
					rs[i] = model.Reading{SensorID: fmt.Sprintf("s-%d", seq%nSeries), Metric: "temperature",
						Value: 20 + 0.1*float64(seq%3-1), TS: ts}
				}
				return rs
			}
			for range 100 * nSeries / batch { // every series warmed up
				d.PublishReadings(mk())
			}
			rs := mk()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for j := range rs { // newer timestamps, or they would be ignored as redeliveries
					ts = ts.Add(time.Millisecond)
					rs[j].TS = ts
				}
				b.StartTimer()
				d.PublishReadings(rs)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/reading")
		})
	}
}
