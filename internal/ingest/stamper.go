package ingest

import "time"

// Bounds of the stamper's memory (see stamper.sweep).
const (
	stamperMinSweep  = 1024    // entries before the first sweep
	stamperMaxSeries = 1 << 16 // entries kept at most after a sweep
)

// stamper gives readings without "ts" their receipt stamps, strictly
// increasing per series (sensor, metric) for the life of the pipeline,
// whatever the clock does: stamp = max(receipt time, the highest receipt
// time seen so far, the series' last stamp + 1µs). Messages that arrive in
// the same microsecond (a burst, a backlog after a restart) thus get
// distinct stamps instead of being merged by the store's key.
//
// Across restarts and instances the store keeps stamps unique (a
// receipt-stamped reading whose key is taken is moved to a free
// microsecond; see model.Reading.Receipt); their order there is as good as
// the clocks.
//
// Memory: only series whose last stamp is at or above the floor (the
// highest receipt time seen) need an entry; the next stamp of any other
// series is the floor or later anyway. A sweep drops the others whenever
// the map has doubled. Should a stuck clock keep them all alive, the sweep
// raises the floor above every stamp given and forgets them all, which
// keeps every series increasing at the cost of running ahead of the clock
// by the largest lead of any series.
//
// Not safe for concurrent use: the pipeline goroutine owns it.
type stamper struct {
	floor   int64 // µs since the epoch; never decreases
	last    map[seriesKey]int64
	sweepAt int
}

type seriesKey struct{ sensor, metric string }

func newStamper() *stamper {
	return &stamper{last: map[seriesKey]int64{}, sweepAt: stamperMinSweep}
}

// stamp returns the stamp of a reading of series (sensor, metric) received
// at received, in UTC at microsecond precision.
func (s *stamper) stamp(sensor, metric string, received time.Time) time.Time {
	s.floor = max(s.floor, received.UnixMicro())
	k := seriesKey{sensor, metric}
	ts := s.floor
	if last, ok := s.last[k]; ok && last >= ts {
		ts = last + 1
	}
	s.last[k] = ts
	if len(s.last) >= s.sweepAt {
		s.sweep()
	}
	return time.UnixMicro(ts).UTC()
}

func (s *stamper) sweep() {
	for k, last := range s.last {
		if last < s.floor {
			delete(s.last, k)
		}
	}
	if len(s.last) > stamperMaxSeries {
		for _, last := range s.last {
			s.floor = max(s.floor, last+1)
		}
		clear(s.last)
	}
	s.sweepAt = max(2*len(s.last), stamperMinSweep)
}
