package hub

import "sync"

// idleQueueCap is the backing array an emptied send queue keeps; a larger
// one, grown by a burst, is released so that an idle connection holds
// almost nothing.
const idleQueueCap = 4

// sendQueue is a connection's queue of items for its writer, bounded in
// items by the caller. Unlike a buffered channel it allocates as items
// come, not up front: a channel of SendQueue items cost every idle
// connection 8 KiB. Enqueuers put under conn.mu; the writer takes without
// it; mu orders the two.
type sendQueue struct {
	mu    sync.Mutex
	items []outMsg // the queued items are items[head:]
	head  int
	msgs  int           // messages in the queued items (an item may hold thousands)
	wake  chan struct{} // capacity 1: something was put since the writer last looked
}

func newSendQueue() *sendQueue { return &sendQueue{wake: make(chan struct{}, 1)} }

// put appends m unless limit items are queued already.
func (q *sendQueue) put(m outMsg, limit int) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Reuse the taken front instead of growing past it.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, m)
	q.msgs += len(m.msgs)
	q.mu.Unlock()
	q.signal()
	return true
}

// signal wakes the writer (or leaves it a wake-up, if it is busy).
func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes the oldest item, if any.
func (q *sendQueue) take() (outMsg, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return outMsg{}, false
	}
	m := q.items[q.head]
	q.items[q.head] = outMsg{} // no reference to shared message buffers
	q.head++
	q.msgs -= len(m.msgs)
	if q.head == len(q.items) {
		if cap(q.items) > idleQueueCap {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return m, true
}

// size returns the queued items and the messages they hold.
func (q *sendQueue) size() (items, msgs int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head, q.msgs
}
