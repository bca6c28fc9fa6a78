package backplane

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// rs makes n readings of batch seq, named "<seq>.<i>" by sensor.
func rs(seq int64, n int) []model.Reading {
	out := make([]model.Reading, n)
	for i := range out {
		out[i] = model.Reading{SensorID: fmt.Sprintf("s%d-%d", seq, i), Metric: "t", Value: float64(i), Seq: seq,
			TS: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	}
	return out
}

func whole(seq int64, n int) part {
	return part{origin: "a", seq: seq, count: 1, readings: rs(seq, n)}
}

// seqs lists what was delivered: seq, with "f" when filled from
// PostgreSQL, and the number of readings.
func seqs(ds []delivery) []string {
	out := []string{}
	for _, d := range ds {
		f := ""
		if d.filled {
			f = "f"
		}
		out = append(out, fmt.Sprintf("%d%s:%d", d.seq, f, len(d.readings)))
	}
	return out
}

func expect(t *testing.T, what string, got []delivery, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if g := seqs(got); !slices.Equal(g, want) {
		t.Fatalf("%s: delivered %v, want %v", what, g, want)
	}
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func TestOrdererInOrder(t *testing.T) {
	o := newOrderer(250*time.Millisecond, 5)
	out, stale := o.add(whole(5, 2), t0)
	expect(t, "5", out, "5:2")
	out, _ = o.add(part{origin: "b", seq: 6, count: 1}, t0) // stored nothing new
	expect(t, "6", out, "6:0")
	if stale {
		t.Fatal("stale")
	}
	if _, waiting := o.deadline(); waiting {
		t.Fatal("waiting with nothing missing")
	}
	if _, stale := o.add(whole(5, 2), t0); !stale {
		t.Fatal("a redelivered batch was not stale")
	}
}

func TestOrdererHoldsUntilThePredecessorArrives(t *testing.T) {
	o := newOrderer(250*time.Millisecond, 5)
	out, _ := o.add(whole(7, 1), t0)
	expect(t, "7 before 5", out)
	if d, ok := o.deadline(); !ok || !d.Equal(t0.Add(250*time.Millisecond)) {
		t.Fatalf("deadline = %v %v, want t0+250ms", d, ok)
	}
	out, _ = o.add(whole(5, 1), t0.Add(200*time.Millisecond))
	expect(t, "5", out, "5:1")
	// Still waiting, now for 6, counted from when 5 went out.
	if d, ok := o.deadline(); !ok || !d.Equal(t0.Add(450*time.Millisecond)) {
		t.Fatalf("deadline = %v %v, want t0+450ms", d, ok)
	}
	out, _ = o.add(whole(6, 3), t0.Add(300*time.Millisecond))
	expect(t, "6", out, "6:3", "7:1")
	if _, ok := o.deadline(); ok {
		t.Fatal("still waiting")
	}
}

func TestOrdererFillsGapsFromTheDatabase(t *testing.T) {
	o := newOrderer(250*time.Millisecond, 5)
	o.add(whole(7, 1), t0)
	o.add(part{origin: "a", seq: 9, index: 0, count: 2, readings: rs(9, 1)}, t0) // one part of two
	o.add(whole(10, 1), t0)
	from, to, ok := o.missing()
	if !ok || from != 5 || to != 10 {
		t.Fatalf("missing = %d..%d %v, want 5..10", from, to, ok)
	}
	// PostgreSQL has 5 (two readings) and 9 (both parts); 6 and 8 were
	// rolled back or stored nothing new; 7 and 10 arrived whole.
	rows := append(append(append(rs(5, 2), rs(7, 1)...), rs(9, 2)...), rs(10, 1)...)
	out, gaps, filled := o.fill(rows, to, t0.Add(250*time.Millisecond))
	expect(t, "fill", out, "5f:2", "7:1", "9f:2", "10:1")
	if gaps != 4 || filled != 2 {
		t.Fatalf("gaps %d filled %d, want 4 and 2", gaps, filled)
	}
	if _, ok := o.deadline(); ok {
		t.Fatal("still waiting after the fill")
	}
	for _, s := range []int64{5, 6, 8, 9} {
		if _, stale := o.add(whole(s, 1), t0.Add(time.Second)); !stale {
			t.Errorf("batch %d arriving after the fill was not stale", s)
		}
	}
	out, _ = o.add(whole(11, 1), t0.Add(time.Second))
	expect(t, "11", out, "11:1")
}

// A fill cut short (fillLimit) delivers up to where it read; the rest
// stays pending and missing.
func TestOrdererPartialFill(t *testing.T) {
	o := newOrderer(time.Millisecond, 1)
	o.add(whole(4, 1), t0)
	out, gaps, filled := o.fill(rs(1, 3), 2, t0)
	expect(t, "partial fill", out, "1f:3")
	if gaps != 2 || filled != 1 {
		t.Fatalf("gaps %d filled %d", gaps, filled)
	}
	if from, to, ok := o.missing(); !ok || from != 3 || to != 4 {
		t.Fatalf("missing = %d..%d %v, want 3..4", from, to, ok)
	}
	if d, ok := o.deadline(); !ok || !d.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("deadline = %v %v: the rest must wait again", d, ok)
	}
}

func TestOrdererJoinsPartsInOrder(t *testing.T) {
	o := newOrderer(time.Second, 1)
	all := rs(1, 5)
	out, _ := o.add(part{origin: "a", seq: 1, index: 1, count: 2, readings: all[3:]}, t0)
	expect(t, "second part", out)
	for _, bad := range []part{
		{origin: "a", seq: 1, index: 1, count: 2, readings: all[3:]}, // seen
		{origin: "a", seq: 1, index: 0, count: 3},                    // count differs
		{origin: "b", seq: 1, index: 0, count: 2},                    // origin differs
		{origin: "a", seq: 1, index: 2, count: 2},                    // no such part
	} {
		if _, stale := o.add(bad, t0); !stale {
			t.Errorf("%+v accepted", bad)
		}
	}
	out, _ = o.add(part{origin: "a", seq: 1, index: 0, count: 2, readings: all[:3]}, t0)
	expect(t, "first part", out, "1:5")
	if !slices.EqualFunc(out[0].readings, all, func(a, b model.Reading) bool { return a.SensorID == b.SensorID }) {
		t.Fatalf("joined %v, want %v", out[0].readings, all)
	}
}

func TestOrdererFlushAtShutdown(t *testing.T) {
	o := newOrderer(time.Second, 1)
	o.add(whole(3, 1), t0)
	o.add(part{origin: "a", seq: 4, count: 2}, t0) // incomplete: left out
	o.add(whole(6, 2), t0)
	expect(t, "flush", o.flush(), "3:1", "6:2")
	if _, ok := o.deadline(); ok {
		t.Fatal("waiting after flush")
	}
	out, _ := o.add(whole(7, 1), t0)
	expect(t, "after flush", out, "7:1")
}
