package ingest

import (
	"fmt"
	"testing"
	"time"
)

func TestStamper(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	us := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }
	type in struct {
		series string
		clock  time.Time
	}
	tests := []struct {
		name string
		in   []in
		want []time.Time
	}{
		{"equal clock readings", []in{{"a", us(0)}, {"a", us(0)}, {"a", us(0)}}, []time.Time{us(0), us(1), us(2)}},
		{"sub-microsecond readings are cut, then spread",
			[]in{{"a", us(0).Add(100)}, {"a", us(0).Add(900)}}, []time.Time{us(0), us(1)}},
		{"series are independent", []in{{"a", us(5)}, {"b", us(5)}, {"a", us(5)}, {"b", us(5)}},
			[]time.Time{us(5), us(5), us(6), us(6)}},
		{"the clock catches up", []in{{"a", us(0)}, {"a", us(0)}, {"a", us(0)}, {"a", us(10)}}, []time.Time{us(0), us(1), us(2), us(10)}},
		{"clock going backwards", []in{{"a", us(100)}, {"a", us(50)}, {"a", us(0)}, {"b", us(0)}},
			[]time.Time{us(100), us(101), us(102), us(100)}},
		{"clock going backwards after the series was forgotten",
			[]in{{"a", us(100)}, {"b", us(200)}, {"a", us(0)}}, []time.Time{us(100), us(200), us(200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStamper()
			for i, x := range tt.in {
				if got := s.stamp(x.series, "m", x.clock); !got.Equal(tt.want[i]) || got.Location() != time.UTC {
					t.Errorf("stamp %d = %v, want %v (UTC)", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestStamperMemoryIsBounded: many series, with a clock that moves and
// with one that is stuck; stamps stay increasing per series.
func TestStamperMemoryIsBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, stuck := range []bool{false, true} {
		t.Run(fmt.Sprintf("stuck=%v", stuck), func(t *testing.T) {
			t.Parallel()
			s := newStamper()
			last := map[string]time.Time{}
			clock := t0
			for i := range 300_000 {
				if !stuck {
					clock = clock.Add(time.Microsecond)
				}
				series := fmt.Sprintf("s%d", i%(2*stamperMaxSeries))
				ts := s.stamp(series, "m", clock)
				if prev, ok := last[series]; ok && !ts.After(prev) {
					t.Fatalf("stamp %d of %s = %v, not after %v", i, series, ts, prev)
				}
				last[series] = ts
				if n := len(s.last); n > 2*stamperMaxSeries+stamperMinSweep {
					t.Fatalf("%d entries after %d stamps", n, i+1)
				}
			}
		})
	}
}
