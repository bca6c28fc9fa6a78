package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// The HTTP hygiene and room-flood findings of the security review, against
// the whole server.

func TestHygieneMetricsOffThePublicPort(t *testing.T) {
	db := newDB(t)
	env := baseEnv(t, db, mqtttest.Start(t).URL())
	srv := startServer(t, env)
	metricsAddr := lookupEnv(env, "WATCHROOM_METRICS_ADDR")

	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if _, body, hdr := get("http://" + srv.addr + "/metrics"); strings.Contains(body, "watchroom_") || strings.Contains(body, "go_goroutines") {
		t.Errorf("the public port serves metrics: %.200s", body)
	} else if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("public response headers: %v", hdr)
	}
	code, body, _ := get("http://" + metricsAddr + "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "watchroom_http_requests_total") {
		t.Errorf("metrics listener %s: %d %.200s", metricsAddr, code, body)
	}
}

// The review sent 1,000 create_room over 25 sockets in 4 s; every change
// went to every connection as the full room list, and passive viewers were
// closed as slow consumers. Now the flood is refused past the creators'
// limits and each created room costs one small room_created.
func TestHygieneRoomFloodRefused(t *testing.T) {
	db := newDB(t)
	srv := startServer(t, baseEnv(t, db, mqtttest.Start(t).URL()))
	const attackers, perSocket = 5, 40 // 200 requests, within each socket's rate burst
	for i := range attackers {
		addUser(t, db, fmt.Sprintf("mallory%d", i), "analyst", "mallory-password")
	}
	addUser(t, db, "vic", "viewer", "viewer-password")
	viewer := connect(t, srv.addr, login(t, srv.addr, "vic", "viewer-password"))

	var wg sync.WaitGroup
	results := make(chan string, attackers*perSocket)
	for i := range attackers {
		c := connect(t, srv.addr, login(t, srv.addr, fmt.Sprintf("mallory%d", i), "mallory-password"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSocket {
				b := fmt.Sprintf(`{"type":"create_room","id":"c%d","data":{"room":"flood-%d-%d"}}`, j, i, j)
				if err := c.conn.WriteMessage(1, []byte(b)); err != nil {
					results <- "write: " + err.Error()
					return
				}
			}
			for range perSocket {
				select {
				case m, ok := <-c.msgs:
					if !ok {
						results <- "closed"
						return
					}
					for m.Type == "room_created" || m.Type == "user_joined" {
						m = <-c.msgs
					}
					if m.Type == "error" {
						var d struct{ Code string }
						_ = json.Unmarshal(m.Data, &d)
						results <- d.Code
					} else {
						results <- m.Type
					}
				case <-time.After(20 * time.Second):
					results <- "timeout"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts["created"] != attackers*5 || counts["rate_limited"] != attackers*(perSocket-5) {
		t.Errorf("replies %v; want %d created (each creator's burst) and the rest rate_limited", counts, attackers*5)
	}

	// The passive viewer got one small room_created per created room, no
	// list, and is still connected.
	viewer.send(map[string]any{"type": "ping", "id": "p"})
	got := map[string]int{}
	for {
		m := viewer.next(10 * time.Second)
		if m.Type == "pong" {
			break
		}
		got[m.Type]++
		if m.Type == "room_created" && len(m.Data) > 300 {
			t.Errorf("room_created of %d bytes: %.100s", len(m.Data), m.Data)
		}
	}
	if got["room_list"] != 0 || got["room_created"] != counts["created"] {
		t.Errorf("the viewer got %v; want %d room_created and no room_list", got, counts["created"])
	}
}
