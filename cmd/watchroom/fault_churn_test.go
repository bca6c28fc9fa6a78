package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

const churnConns = 5000

// raiseFileLimit lifts the soft limit on open files to the hard limit:
// the test holds 5,000 client sockets and the child server, which
// inherits the limit, as many again.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < need {
		lim.Cur = min(lim.Max, need)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	if lim.Cur < need {
		t.Fatalf("open files limited to %d (hard limit), the test needs %d: raise it (ulimit -Hn)", lim.Cur, need)
	}
}

// openQuiet opens an authenticated /ws connection that takes no readings
// (unsubscribed from all), so that 5,000 of them measure the cost of a
// connection, not of fan-out.
func openQuiet(addr, token string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	auth, _ := json.Marshal(map[string]any{"type": "auth", "data": map[string]string{"token": token}})
	unsub := []byte(`{"type":"unsubscribe","id":1,"data":{"sensors":["*"]}}`)
	if err := c.WriteMessage(websocket.TextMessage, auth); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.WriteMessage(websocket.TextMessage, unsub); err != nil {
		c.Close()
		return nil, err
	}
	// Readings may come before the reply to unsubscribe: skip them without
	// decoding (5,000 connections, a race-instrumented test process).
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.Contains(b, []byte(`"type":"auth_error"`)) {
			c.Close()
			return nil, fmt.Errorf("auth_error: %s", b)
		}
		if bytes.Contains(b, []byte(`"type":"subscribed"`)) {
			c.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

// 5,000 connections opened and dropped without a close frame (half with
// FIN, half with RST) while the load runs: the server must end each
// connection's goroutines, so its goroutine count returns to the
// baseline. Memory figures are reported, not asserted.
func TestFaultConnectionChurn(t *testing.T) {
	raiseFileLimit(t, 2*churnConns+2000)
	r := newFaultRig(t, nil)
	ks := r.trackers(t, "client", 10, false)
	g := r.steadyLoad(t)
	base := r.srv.metrics()

	conns := make([]*websocket.Conn, churnConns)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	next := make(chan int)
	openStart := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := openQuiet(r.srv.addr, r.token)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	opened := time.Since(openStart)
	if len(errs) > 0 {
		m := r.srv.metrics()
		t.Fatalf("%d of %d connections failed to open in %v; first: %v; server: %v connections, disconnects slow_consumer=%v auth_timeout=%v write_error=%v read_error=%v",
			len(errs), churnConns, opened, errs[0], metricSum(m, "watchroom_ws_connections"),
			metricSum(m, "watchroom_ws_disconnects_total", `reason="slow_consumer"`), metricSum(m, "watchroom_ws_disconnects_total", `reason="auth_timeout"`),
			metricSum(m, "watchroom_ws_disconnects_total", `reason="write_error"`), metricSum(m, "watchroom_ws_disconnects_total", `reason="read_error"`))
	}
	peak := r.srv.metrics()
	if got := metricSum(peak, "watchroom_ws_connections") - metricSum(base, "watchroom_ws_connections"); got != churnConns {
		t.Errorf("watchroom_ws_connections rose by %v, want %d", got, churnConns)
	}

	dropStart := time.Now()
	for i, c := range conns {
		tcp := c.UnderlyingConn().(*net.TCPConn)
		if i%2 == 1 {
			_ = tcp.SetLinger(0) // RST instead of FIN
		}
		_ = tcp.Close()
	}
	baseG := metricSum(base, "go_goroutines")
	const margin = 30
	var after map[string]float64
	back := waitUntil(60*time.Second, 200*time.Millisecond, func() bool {
		after = r.srv.metrics()
		return metricSum(after, "go_goroutines") <= baseG+margin &&
			metricSum(after, "watchroom_ws_connections") == metricSum(base, "watchroom_ws_connections")
	})
	recovered := time.Since(dropStart)
	if !back {
		t.Errorf("60s after dropping %d connections: %v goroutines (baseline %v, margin %d), %v connections (baseline %v)",
			churnConns, metricSum(after, "go_goroutines"), baseG, margin, metricSum(after, "watchroom_ws_connections"), metricSum(base, "watchroom_ws_connections"))
	}
	settle(t, r, g, ks, 60*time.Second)
	settled := r.srv.metrics()
	f := verifyLoad(t, r.db, g, ks)
	mb := func(m map[string]float64, name string) string {
		return fmt.Sprintf("%.1fMB", metricSum(m, name)/1e6)
	}
	f.log(t, "churn-5000", fmt.Sprintf("open_took=%v goroutines_base=%v peak=%v after=%v back_after=%v heap_inuse_base=%s peak=%s after=%s rss_base=%s peak=%s after=%s heap_inuse_settled=%s rss_settled=%s",
		opened.Round(time.Millisecond), baseG, metricSum(peak, "go_goroutines"), metricSum(after, "go_goroutines"), recovered.Round(10*time.Millisecond),
		mb(base, "go_memstats_heap_inuse_bytes"), mb(peak, "go_memstats_heap_inuse_bytes"), mb(after, "go_memstats_heap_inuse_bytes"),
		mb(base, "process_resident_memory_bytes"), mb(peak, "process_resident_memory_bytes"), mb(after, "process_resident_memory_bytes"),
		mb(settled, "go_memstats_heap_inuse_bytes"), mb(settled, "process_resident_memory_bytes")))
}
