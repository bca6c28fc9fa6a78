package backplane

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// runBackplane runs a Backplane named origin on b until the test ends.
func runBackplane(t *testing.T, broker *mqtttest.Broker, origin string, setup func(*Backplane)) *Backplane {
	t.Helper()
	bp, err := New(Config{BrokerURL: broker.URL(), ClientID: origin + "-backplane", Origin: origin}, &fakeStore{}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(bp)
	}
	if err := bp.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = bp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return bp
}

// waitUntil polls cond every 10 ms for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Events published while the broker is down (a restart) are held, in
// order, and published once the connection is back and subscribed: a
// relayed chat message arrives late, not never. The receiver numbers each
// origin's events, so any it still misses (its own reconnect may come
// after the sender's) is counted, never silent.
func TestEventsPublishedWhileDisconnectedArriveAfterTheReconnect(t *testing.T) {
	broker := mqtttest.Start(t)
	var mu sync.Mutex
	var got []string
	b := runBackplane(t, broker, "b", func(bp *Backplane) {
		bp.Handle("note", func(_ string, body []byte) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(body))
			return nil
		})
	})
	a := runBackplane(t, broker, "a", nil)
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	has := func(prefix string) bool {
		for _, g := range received() {
			if strings.HasPrefix(g, prefix) {
				return true
			}
		}
		return false
	}
	// b subscribes in its own time: repeat an event until one lands.
	probe := func(what string) {
		waitUntil(t, what+" at b", func() bool {
			if !has(`"` + what) {
				a.Publish("note", []byte(`"`+what+`"`))
				time.Sleep(50 * time.Millisecond)
			}
			return has(`"` + what)
		})
	}
	probe("before")

	broker.Stop()
	waitUntil(t, "a to notice the broker is gone", func() bool { return !a.Connected() })
	const n = 5
	for i := range n {
		a.Publish("note", fmt.Appendf(nil, `"during %d"`, i))
	}
	broker.StartAgain()
	waitUntil(t, "both back", func() bool { return a.Connected() && b.Connected() })
	probe("after") // a later event shows b any gap in a's numbering

	var during []string
	for _, g := range received() {
		if strings.HasPrefix(g, `"during`) {
			during = append(during, g)
		}
	}
	missed := testutil.ToFloat64(b.ev.missed)
	if len(during)+int(missed) != n {
		t.Fatalf("b got %v and counted %v missed, want the %d events published during the outage, each received or counted", during, missed, n)
	}
	for i := 1; i < len(during); i++ {
		if during[i] < during[i-1] {
			t.Fatalf("b got the held events out of order: %v", during)
		}
	}
	if d := testutil.ToFloat64(a.ev.dropped.WithLabelValues(eventDisconnected)); d != 0 {
		t.Errorf("a dropped %v events as disconnected, want 0 (held)", d)
	}
	t.Logf("held during the outage: %d received after the reconnect, %v missed", len(during), missed)
}
