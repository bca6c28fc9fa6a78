package hub

import (
	"strconv"
	"testing"
)

func queueItem(n int) outMsg {
	m := outMsg{}
	for i := range n {
		m.msgs = append(m.msgs, []byte(strconv.Itoa(i)))
	}
	return m
}

func TestSendQueueKeepsOrderAndItsBound(t *testing.T) {
	q := newSendQueue()
	if items, msgs := q.size(); items != 0 || msgs != 0 || q.items != nil {
		t.Fatalf("a new queue holds %d items, %d messages, array %v: want nothing allocated", items, msgs, q.items)
	}
	// Interleaved puts and takes over many rounds: FIFO, the bound holds,
	// and the array never grows past the bound (the taken front is reused).
	next, want := 0, 0
	for round := range 200 {
		for range round%7 + 1 {
			if !q.put(queueItem(next%3+1), 5) {
				if items, _ := q.size(); items != 5 {
					t.Fatalf("put refused with %d items queued; the bound is 5", items)
				}
				break
			}
			next++
		}
		for range round % 5 {
			m, ok := q.take()
			if !ok {
				break
			}
			if len(m.msgs) != want%3+1 {
				t.Fatalf("item %d has %d messages, want %d: out of order", want, len(m.msgs), want%3+1)
			}
			want++
		}
		if cap(q.items) > 8 {
			t.Fatalf("round %d: backing array of %d items for a bound of 5", round, cap(q.items))
		}
	}
	_, msgs := q.size()
	sum := 0
	for i := want; i < next; i++ {
		sum += i%3 + 1
	}
	if msgs != sum {
		t.Fatalf("size says %d messages, the queued items hold %d", msgs, sum)
	}
}

func TestSendQueueReleasesABurstsArray(t *testing.T) {
	q := newSendQueue()
	for range 100 {
		q.put(queueItem(1), 256)
	}
	for {
		if _, ok := q.take(); !ok {
			break
		}
	}
	if q.items != nil {
		t.Fatalf("an emptied queue keeps an array of %d items; want it released", cap(q.items))
	}
	q.put(queueItem(1), 256)
	q.take()
	if cap(q.items) > idleQueueCap {
		t.Fatalf("a small array (%d) was not kept for reuse", cap(q.items))
	}
}

func TestSendQueueWakesTheWriterOnce(t *testing.T) {
	q := newSendQueue()
	q.put(queueItem(1), 10)
	q.put(queueItem(1), 10)
	select {
	case <-q.wake:
	default:
		t.Fatal("no wake-up after put")
	}
	select {
	case <-q.wake:
		t.Fatal("two wake-ups for one look at the queue")
	default:
	}
}
