package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// The demo must come up on its own: embedded broker, simulator, users with
// printed passwords, and readings flowing to the dashboard's WebSocket.
func TestDemoRunsEverything(t *testing.T) {
	db := newDB(t)
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	out := &syncBuffer{}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo"}, []string{"WATCHROOM_DATABASE_URL=" + db, "WATCHROOM_HTTP_ADDR=" + addr, "WATCHROOM_METRICS_ADDR="}, strings.NewReader(""), out, logs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("demo did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("demo output:\n%s\nlogs:\n%s", out.String(), tail(logs.String(), 4000))
		}
	}()

	pw := regexp.MustCompile(`operator\s+\(operator\)\s+password: (\S+)`)
	// A bound, not a speed: under -race on two busy cores, the demo's four
	// bcrypt hashes and the migrations alone take tens of seconds.
	deadline := time.Now().Add(90 * time.Second)
	var password string
	for password == "" {
		if m := pw.FindStringSubmatch(out.String()); m != nil {
			password = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("demo printed no operator password")
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !strings.Contains(out.String(), "http://"+addr+"/") {
		t.Errorf("demo output does not name the dashboard URL http://%s/", addr)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("GET / = %d, want the dashboard", resp.StatusCode)
	}
	ws := connect(t, addr, login(t, addr, "operator", password))
	ws.nextOf("reading", 15*time.Second) // from the simulator, through the embedded broker
}
