package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/backoff"
	"github.com/watchroom/watchroom/internal/model"
)

// fakeRegistry is a SensorRegistry over a set of ids; it counts queries
// and fails the first `failures` of them.
type fakeRegistry struct {
	mu       sync.Mutex
	ids      map[string]bool
	failures int
	queries  int
}

func (f *fakeRegistry) DeviceRegistered(ctx context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	if f.failures > 0 {
		f.failures--
		return false, errors.New("database is down")
	}
	return f.ids[id], nil
}

func (f *fakeRegistry) set(id string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[id] = ok
}

func (f *fakeRegistry) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries
}

type fakeLister []model.Sensor

func (l fakeLister) Sensors(context.Context) ([]model.Sensor, error) { return l, nil }

func instantRetry() backoff.Policy {
	return backoff.Policy{Min: time.Millisecond, Max: time.Millisecond, After: func(time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}}
}

func newTestAdmitter(t *testing.T, a Admission) (*admitter, *metrics) {
	t.Helper()
	m := newMetrics(prometheus.NewRegistry())
	ad := newAdmitter(a, instantRetry(), m, slog.New(slog.DiscardHandler))
	if err := ad.seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ad, m
}

// readingsOf returns one reading per metric of sensor.
func readingsOf(sensor string, metrics ...string) []model.Reading {
	rs := make([]model.Reading, len(metrics))
	for i, m := range metrics {
		rs[i] = model.Reading{SensorID: sensor, Metric: m, Value: 1, TS: testNow}
	}
	return rs
}

// step is one message offered to an admitter at testNow+at.
type step struct {
	at      time.Duration
	sensor  string
	metrics []string
	want    string // reject reason, "" admitted
}

func TestAdmitNewSeriesCap(t *testing.T) {
	seeded := fakeLister{{ID: "old", Metric: "t"}, {ID: "old", Metric: "h"}}
	for _, tc := range []struct {
		name  string
		adm   Admission
		steps []step
	}{
		{"no cap admits everything", Admission{Known: seeded}, []step{
			{0, "a", []string{"t"}, ""}, {0, "b", []string{"t"}, ""}, {0, "c", []string{"t", "h", "p"}, ""},
		}},
		{"burst then refused, refilled at the rate", Admission{Known: seeded, NewSeriesRate: 1, NewSeriesBurst: 3}, []step{
			{0, "a", []string{"t"}, ""},
			{0, "b", []string{"t", "h"}, ""},
			{0, "c", []string{"t"}, ReasonNewSeriesLimited},
			{999 * time.Millisecond, "c", []string{"t"}, ReasonNewSeriesLimited},
			{time.Second, "c", []string{"t"}, ""},
		}},
		{"known series are never limited", Admission{Known: seeded, NewSeriesRate: 1, NewSeriesBurst: 1}, []step{
			{0, "a", []string{"t"}, ""},
			{0, "d", []string{"t"}, ReasonNewSeriesLimited},
			{0, "old", []string{"t", "h"}, ""}, // seeded from the store
			{0, "a", []string{"t"}, ""},        // admitted since start
		}},
		{"a message is all or nothing", Admission{Known: seeded, NewSeriesRate: 1, NewSeriesBurst: 2}, []step{
			{0, "old", []string{"t", "new1", "new2", "new3"}, ReasonNewSeriesLimited},
			{0, "old", []string{"t", "new1", "new2"}, ""},
			{0, "old", []string{"t", "new1"}, ""},
		}},
		{"a full known set lets series through the cap each time", Admission{NewSeriesRate: 1, NewSeriesBurst: 2, MaxKnownSeries: 1}, []step{
			{0, "a", []string{"t"}, ""},
			{0, "b", []string{"t"}, ""}, // not remembered
			{0, "b", []string{"t"}, ReasonNewSeriesLimited},
			{0, "a", []string{"t"}, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad, _ := newTestAdmitter(t, tc.adm)
			for i, s := range tc.steps {
				got, err := ad.admit(context.Background(), readingsOf(s.sensor, s.metrics...), testNow.Add(s.at))
				if err != nil || got != s.want {
					t.Errorf("step %d (%s %v at +%v) = %q, %v; want %q", i, s.sensor, s.metrics, s.at, got, err, s.want)
				}
			}
		})
	}
}

func TestAdmitRegistered(t *testing.T) {
	ttl := 10 * time.Second
	for _, tc := range []struct {
		name      string
		failures  int
		steps     []step
		change    func(*fakeRegistry) // after the first step
		wantQuery int
	}{
		{"registered admitted, others rejected, answers cached for the TTL", 0, []step{
			{0, "dev-1", []string{"t"}, ""},
			{0, "evil", []string{"t"}, ReasonUnregistered},
			{ttl - time.Nanosecond, "dev-1", []string{"t"}, ""},
			{ttl - time.Nanosecond, "evil", []string{"t"}, ReasonUnregistered},
		}, nil, 2},
		{"a revocation is noticed after the TTL", 0, []step{
			{0, "dev-1", []string{"t"}, ""},
			{time.Second, "dev-1", []string{"t"}, ""},
			{ttl, "dev-1", []string{"t"}, ReasonUnregistered},
		}, func(f *fakeRegistry) { f.set("dev-1", false) }, 2},
		{"a registration is noticed after the TTL", 0, []step{
			{0, "dev-2", []string{"t"}, ReasonUnregistered},
			{time.Second, "dev-2", []string{"t"}, ReasonUnregistered},
			{ttl, "dev-2", []string{"t"}, ""},
		}, func(f *fakeRegistry) { f.set("dev-2", true) }, 2},
		{"failed queries are retried, not taken as an answer", 3, []step{
			{0, "dev-1", []string{"t"}, ""},
		}, nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := &fakeRegistry{ids: map[string]bool{"dev-1": true}, failures: tc.failures}
			ad, m := newTestAdmitter(t, Admission{Registry: reg, RegistryTTL: ttl})
			for i, s := range tc.steps {
				got, err := ad.admit(context.Background(), readingsOf(s.sensor, s.metrics...), testNow.Add(s.at))
				if err != nil || got != s.want {
					t.Errorf("step %d (%s at +%v) = %q, %v; want %q", i, s.sensor, s.at, got, err, s.want)
				}
				if i == 0 && tc.change != nil {
					tc.change(reg)
				}
			}
			if q := reg.count(); q != tc.wantQuery {
				t.Errorf("registry queried %d times, want %d", q, tc.wantQuery)
			}
			if got := testutil.ToFloat64(m.registryErrors); got != float64(tc.failures) {
				t.Errorf("registry errors = %g, want %d", got, tc.failures)
			}
		})
	}

	t.Run("invented ids cost at most the lookup budget; registered ids are re-checked freely", func(t *testing.T) {
		reg := &fakeRegistry{ids: map[string]bool{"dev-1": true}}
		ad, _ := newTestAdmitter(t, Admission{Registry: reg, RegistryTTL: ttl})
		if got, _ := ad.admit(context.Background(), readingsOf("dev-1", "t"), testNow); got != "" {
			t.Fatalf("dev-1: %q", got)
		}
		counts := map[string]int{}
		for i := range 2000 {
			got, err := ad.admit(context.Background(), readingsOf(fmt.Sprintf("x-%d", i), "t"), testNow)
			if err != nil {
				t.Fatal(err)
			}
			counts[got]++
		}
		if counts[ReasonUnregistered] != registryLookupBurst-1 || counts[ReasonLookupLimited] != 2000-registryLookupBurst+1 {
			t.Errorf("outcomes %v; want %d unregistered, the rest lookup_limited", counts, registryLookupBurst-1)
		}
		// The budget is spent, yet dev-1's expired answer is checked again.
		if got, _ := ad.admit(context.Background(), readingsOf("dev-1", "t"), testNow.Add(ttl)); got != "" {
			t.Errorf("dev-1 after the TTL: %q", got)
		}
		if q := reg.count(); q != registryLookupBurst+1 {
			t.Errorf("registry queried %d times, want %d", q, registryLookupBurst+1)
		}
	})

	t.Run("shutdown while the registry fails decides nothing", func(t *testing.T) {
		reg := &fakeRegistry{ids: map[string]bool{"dev-1": true}, failures: 1 << 30}
		ad, _ := newTestAdmitter(t, Admission{Registry: reg})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for reg.count() < 3 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		if got, err := ad.admit(ctx, readingsOf("dev-1", "t"), testNow); err == nil {
			t.Errorf("admit = %q, nil; want an error", got)
		}
	})
}

// Rejected messages are acked in their place, counted under their reason
// and never reach the store.
func TestPipelineRejectsUnadmitted(t *testing.T) {
	reg := &fakeRegistry{ids: map[string]bool{"dev-1": true, "dev-2": true}}
	h := startPipeline(t, Config{BatchSize: 4, Admission: Admission{Registry: reg, NewSeriesRate: 1, NewSeriesBurst: 2}}, nil, nil)
	h.send("sensors/dev-1/t", "1")           // admitted, new series 1
	h.send("sensors/evil/t", "1")            // unregistered
	h.send("sensors/dev-2", `{"a":1,"b":2}`) // two new series, one token left: refused
	h.send("sensors/dev-1/t", "2")           // known
	waitFor(t, "the batch", func() bool { return len(h.ev.acks()) == 4 })
	if got := h.ev.acks(); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("acks %v", got)
	}
	_, batches := h.store.snapshot()
	if len(batches) != 1 || len(batches[0]) != 2 || batches[0][0].SensorID != "dev-1" || batches[0][1].SensorID != "dev-1" {
		t.Errorf("stored %v; want the two readings of dev-1", batches)
	}
	for reason, want := range map[string]float64{ReasonUnregistered: 1, ReasonNewSeriesLimited: 1, ReasonLookupLimited: 0} {
		if got := testutil.ToFloat64(h.m.rejected[reason]); got != want {
			t.Errorf("rejected{%s} = %g, want %g", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(h.m.knownSeries); got != 1 {
		t.Errorf("known series = %g, want 1", got)
	}
}
