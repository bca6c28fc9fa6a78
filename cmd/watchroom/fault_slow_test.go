package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// One slow and one stalled consumer among 100 fast clients under load.
// The fast ones must receive every reading (they are not slowed down by
// the others: their queues are their own). The slow one is thinned: it
// gets gap messages that account for every reading it was not sent, and
// stays connected. The stalled one is closed within the write deadline
// and counted.
func TestFaultSlowConsumer(t *testing.T) {
	// A write deadline well above any pause a loaded 2-core machine can
	// impose on the slow client's reader: it must be thinned, not closed.
	// The stalled one still hits it (it never reads).
	r := newFaultRig(t, nil, "WATCHROOM_WS_WRITE_TIMEOUT=20s", "WATCHROOM_WS_HIGH_WATER=2048")
	fast := r.trackers(t, "fast", 100, false)
	slow := newTracker("slow", r.srv.addr, r.token)
	slow.delay = 200 * time.Millisecond // at most 5 frames a second
	slow.rcvBuf = 4096
	slow.start(t)
	stalled := newTracker("stalled", r.srv.addr, r.token)
	stalled.stall = true
	stalled.rcvBuf = 4096
	stalled.start(t)

	g := newLoad(t, r.broker.URL())
	g.run()
	time.Sleep(15 * time.Second)
	settle(t, r, g, fast, 60*time.Second)
	// The slow client drains what it was sent (bounded).
	n := countLike(t, r.db, "f-%")
	waitUntil(60*time.Second, 200*time.Millisecond, func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return len(slow.closes) > 0 || countSeen(slow.counts)+slow.thinned >= n
	})
	stalled.released.Store(true) // let it read: its close frame is behind what piled up
	waitUntil(60*time.Second, 100*time.Millisecond, func() bool {
		stalled.mu.Lock()
		defer stalled.mu.Unlock()
		return len(stalled.closes) > 0
	})
	m := r.srv.metrics()
	f := verifyLoad(t, r.db, g, fast)

	slow.mu.Lock()
	seen := countSeen(slow.counts)
	if len(slow.closes) > 0 {
		t.Errorf("slow client was closed (%v) instead of thinned: it read 5 frames a second, received %d readings, %d gap messages", slow.closes, seen, slow.gaps)
	}
	if slow.gaps == 0 {
		t.Errorf("slow client received no gap message (received %d of %d readings)", seen, n)
	}
	if seen+slow.thinned != n || slow.dups != 0 {
		t.Errorf("slow client: %d readings received + %d thinned (gap) = %d, want %d stored; %d received twice", seen, slow.thinned, seen+slow.thinned, n, slow.dups)
	}
	slowFig := fmt.Sprintf("slow_received=%d slow_thinned=%d slow_gaps=%d slow_closes=%v", seen, slow.thinned, slow.gaps, slow.closes)
	slow.mu.Unlock()

	stalled.mu.Lock()
	stalledCloses := append([]int(nil), stalled.closes...)
	stalled.mu.Unlock()
	if len(stalledCloses) == 0 {
		t.Errorf("stalled client was never closed")
	}
	// Every forced close is counted by reason; the fast clients were never
	// closed, so these are the stalled (and possibly the slow) client.
	forced := metricSum(m, "watchroom_ws_disconnects_total") - metricSum(m, "watchroom_ws_disconnects_total", `reason="client_closed"`)
	if forced < 1 {
		t.Errorf("no forced disconnect counted in watchroom_ws_disconnects_total")
	}
	thinMetric := 0.0
	for k, v := range m {
		if strings.Contains(k, "thin") {
			thinMetric += v
		}
	}
	if thinMetric == 0 {
		t.Errorf("no thinning counted in /metrics (no series naming \"thin\" is above zero)")
	}
	for _, k := range fast {
		if len(k.closes) > 0 {
			t.Errorf("fast client %s was closed: %v", k.name, k.closes)
		}
	}
	f.log(t, "slow-consumer", slowFig+fmt.Sprintf(" stalled_closes=%v forced_disconnects=%v thin_metric=%v slow_consumer_closes=%v",
		stalledCloses, forced, thinMetric, metricSum(m, "watchroom_ws_disconnects_total", `reason="slow_consumer"`)))
}

func countSeen(counts []uint8) int {
	n := 0
	for _, c := range counts {
		if c > 0 {
			n++
		}
	}
	return n
}
