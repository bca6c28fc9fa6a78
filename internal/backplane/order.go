package backplane

import (
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// orderer puts committed batches back in seq order. It is plain data,
// owned by Run's goroutine, and takes the time as an argument, so tests
// drive it with any clock.
//
// Batches commit in seq order (store.InsertReadings takes the seq under
// an advisory lock held until commit), but reach an instance by different
// paths: its own straight from ingest, the others' through the broker. A
// batch whose predecessor has not arrived waits; if the predecessor is
// still missing hold after delivery started waiting for it, Run reads the
// missing seqs from PostgreSQL (missing, then fill). By then every missing
// seq is decided: a later batch has committed, so the earlier ones have
// committed or rolled back (the lock), and what PostgreSQL does not have
// never comes.
type orderer struct {
	hold time.Duration

	next    int64 // the seq delivered next
	pending map[int64]*pendingBatch
	// waitSince is when delivery started waiting for next with later
	// batches pending; zero when it is not waiting.
	waitSince time.Time
}

// pendingBatch is a batch received whole or in part.
type pendingBatch struct {
	parts  [][]model.Reading // by part index; nil until received
	got    int
	origin string
}

func (p *pendingBatch) complete() bool { return p.got == len(p.parts) }

// delivery is a batch ready for the sinks, in seq order. Readings is empty
// for a batch that stored nothing new or that PostgreSQL does not have.
type delivery struct {
	seq      int64
	readings []model.Reading
	filled   bool // read from PostgreSQL
}

func newOrderer(hold time.Duration, next int64) *orderer {
	return &orderer{hold: hold, next: next, pending: map[int64]*pendingBatch{}}
}

// part is one message of a batch: Index of Count, with its readings.
type part struct {
	origin   string
	seq      int64
	index    int
	count    int
	readings []model.Reading
}

// add takes a part and returns the batches now deliverable, in order.
// stale reports a part that is of no use: of a batch delivered already (a
// redelivery, or one read from PostgreSQL before it arrived), a part seen
// already, or one whose count disagrees with the batch's other parts.
func (o *orderer) add(p part, now time.Time) (out []delivery, stale bool) {
	if p.seq < o.next || p.count < 1 || p.index < 0 || p.index >= p.count {
		return nil, true
	}
	b := o.pending[p.seq]
	if b == nil {
		b = &pendingBatch{parts: make([][]model.Reading, p.count), origin: p.origin}
		o.pending[p.seq] = b
	}
	if len(b.parts) != p.count || b.parts[p.index] != nil || b.origin != p.origin {
		return nil, true
	}
	if p.readings == nil {
		p.readings = []model.Reading{}
	}
	b.parts[p.index] = p.readings
	b.got++
	return o.collect(nil, now), false
}

// collect appends to out the complete batches from next on, and notes
// whether delivery now waits.
func (o *orderer) collect(out []delivery, now time.Time) []delivery {
	advanced := false
	for {
		b := o.pending[o.next]
		if b == nil || !b.complete() {
			break
		}
		out = append(out, delivery{seq: o.next, readings: b.join()})
		delete(o.pending, o.next)
		o.next++
		advanced = true
	}
	switch {
	case len(o.pending) == 0:
		o.waitSince = time.Time{}
	case o.waitSince.IsZero() || advanced:
		o.waitSince = now
	}
	return out
}

func (b *pendingBatch) join() []model.Reading {
	if len(b.parts) == 1 {
		return b.parts[0]
	}
	n := 0
	for _, p := range b.parts {
		n += len(p)
	}
	out := make([]model.Reading, 0, n)
	for _, p := range b.parts {
		out = append(out, p...)
	}
	return out
}

// deadline is when the wait for next ends; ok is false when delivery is
// not waiting.
func (o *orderer) deadline() (t time.Time, ok bool) {
	if o.waitSince.IsZero() {
		return time.Time{}, false
	}
	return o.waitSince.Add(o.hold), true
}

// missing returns the range of seqs to read from PostgreSQL once the
// deadline has passed: from next to the highest pending seq. ok is false
// when nothing is missing.
func (o *orderer) missing() (from, to int64, ok bool) {
	if len(o.pending) == 0 {
		return 0, 0, false
	}
	to = o.next
	for s := range o.pending {
		to = max(to, s)
	}
	return o.next, to, true
}

// fill delivers every seq from next to upTo: a pending complete batch as
// received, any other from rows (the readings PostgreSQL has of those
// seqs, in seq order; none for a seq means it has nothing to deliver).
// Then the complete batches after upTo follow. gaps counts the seqs that
// were missing, filled those of them PostgreSQL had readings of.
func (o *orderer) fill(rows []model.Reading, upTo int64, now time.Time) (out []delivery, gaps, filled int) {
	i := 0
	for ; o.next <= upTo; o.next++ {
		j := i
		for j < len(rows) && rows[j].Seq == o.next {
			j++
		}
		if b := o.pending[o.next]; b != nil && b.complete() {
			out = append(out, delivery{seq: o.next, readings: b.join()})
		} else {
			gaps++
			if j > i {
				filled++
				out = append(out, delivery{seq: o.next, readings: rows[i:j:j], filled: true})
			}
		}
		delete(o.pending, o.next)
		i = j
	}
	o.waitSince = time.Time{}
	return o.collect(out, now), gaps, filled
}

// flush delivers everything pending in seq order without waiting, for
// shutdown; incomplete batches are left out.
func (o *orderer) flush() []delivery {
	var out []delivery
	for len(o.pending) > 0 {
		from, to, _ := o.missing()
		for s := from; s <= to; s++ {
			if b := o.pending[s]; b != nil && b.complete() {
				out = append(out, delivery{seq: s, readings: b.join()})
			}
			delete(o.pending, s)
		}
		o.next = to + 1
	}
	o.waitSince = time.Time{}
	return out
}
