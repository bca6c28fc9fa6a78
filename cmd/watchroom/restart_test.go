package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// waitForCount polls the database until sensor has want readings.
func waitForCount(t *testing.T, dbURL, sensor string, want int, within time.Duration) (total, distinct int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		total, distinct = countReadings(t, dbURL, sensor)
		if total >= want || time.Now().After(deadline) {
			return total, distinct
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBackendRestartLosesAndDuplicatesNothing(t *testing.T) {
	e := setup(t)
	pub := publisher(t, e.broker.URL())
	const n = 3000
	base := time.Now().Add(-2 * time.Hour).UTC()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < n; i++ {
			ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
			pub.Publish("sensors/s-restart/flow", 1, false, fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts)).Wait()
			if i%100 == 0 {
				time.Sleep(20 * time.Millisecond) // spread over the restart
			}
		}
	}()
	// Restart the backend while readings keep arriving at the broker.
	waitForCount(t, e.db, "s-restart", 200, 20*time.Second)
	e.srv.stop()
	time.Sleep(300 * time.Millisecond)
	e.srv = startServer(t, e.srv.env)
	<-sent
	total, distinct := waitForCount(t, e.db, "s-restart", n, 30*time.Second)
	if total != n || distinct != n {
		t.Fatalf("after restart: %d readings (%d distinct), want exactly %d", total, distinct, n)
	}
}

func TestBrokerRestartKeepsTheSession(t *testing.T) {
	e := setup(t)
	ws := connect(t, e.srv.addr, e.token)
	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/s-b/temperature", "20.5")
	ws.nextOf("reading", 10*time.Second)

	e.broker.Stop()
	e.broker.StartAgain()
	// Readings published after the restart arrive once Watchroom has
	// reconnected and resubscribed.
	pub2 := publisher(t, e.broker.URL())
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		publish(t, pub2, "sensors/s-b/temperature", fmt.Sprintf(`{"value":%d,"ts":%d}`, 30+i, time.Now().UnixMilli()))
		total, _ := countReadings(t, e.db, "s-b")
		if total >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reading stored within 30s of the broker restart")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestEmbeddedBroker(t *testing.T) {
	db := newDB(t)
	addUser(t, db, "alice", "operator", "alice-password")
	port := mqtttest.FreePort(t)
	srv := startServer(t, baseEnv(t, db, "", fmt.Sprintf("WATCHROOM_MQTT_LISTEN=127.0.0.1:%d", port)))
	ws := connect(t, srv.addr, login(t, srv.addr, "alice", "alice-password"))
	pub := publisher(t, fmt.Sprintf("tcp://127.0.0.1:%d", port))
	publish(t, pub, "sensors/s-e", `{"temperature":21.5,"humidity":40}`)
	got := map[string]bool{}
	for len(got) < 2 {
		m := ws.nextOf("reading", 10*time.Second)
		var r struct{ Metric string }
		_ = json.Unmarshal(m.Data, &r)
		got[r.Metric] = true
	}
	if !got["temperature"] || !got["humidity"] {
		t.Errorf("metrics received: %v", got)
	}
}

func TestShutdownClosesClientsWithGoingAway(t *testing.T) {
	e := setup(t)
	ws := connect(t, e.srv.addr, e.token)
	e.srv.stop()
	if code := ws.closeCode(10 * time.Second); code != 1001 {
		t.Errorf("close code %d, want 1001", code)
	}
}

// TestShutdownPushesTheFinalFlushBeforeGoingAway publishes readings that
// stay in ingest's batch (the flush interval is an hour), then stops the
// server: the final flush commits them, and a client connected through
// the real server must receive exactly the committed readings before its
// 1001.
func TestShutdownPushesTheFinalFlushBeforeGoingAway(t *testing.T) {
	const n = 200
	e := setup(t, "WATCHROOM_FLUSH_INTERVAL=1h", "WATCHROOM_BATCH_SIZE=100000")
	ws := connect(t, e.srv.addr, e.token)
	pub := publisher(t, e.broker.URL())
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		publish(t, pub, "sensors/s-final/temperature", fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts))
	}
	// Every message has reached ingest (counted as it is queued); none is
	// committed before the shutdown.
	deadline := time.Now().Add(10 * time.Second)
	for scrapeMetrics(t, lookupEnv(e.srv.env, "WATCHROOM_METRICS_ADDR"))["watchroom_mqtt_messages_received_total"] < n {
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not receive %d messages within 10s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if total, _ := countReadings(t, e.db, "s-final"); total != 0 {
		t.Fatalf("%d readings committed before the shutdown, want 0 (flush interval 1h)", total)
	}

	e.srv.stop()

	got := map[string]bool{}
	code := 0
	for code == 0 {
		select {
		case m, ok := <-ws.msgs:
			if !ok {
				code = <-ws.closed
				break
			}
			if m.Type != "reading" {
				continue
			}
			var r struct {
				SensorID string `json:"sensor_id"`
				TS       string `json:"ts"`
			}
			if err := json.Unmarshal(m.Data, &r); err != nil || r.SensorID != "s-final" {
				t.Fatalf("unexpected reading %s (%v)", m.Data, err)
			}
			ts, err := time.Parse(time.RFC3339Nano, r.TS)
			if err != nil {
				t.Fatalf("reading ts %q: %v", r.TS, err)
			}
			got[ts.UTC().Format(time.RFC3339Nano)] = true
		case <-time.After(10 * time.Second):
			t.Fatal("connection not closed within 10s of the shutdown")
		}
	}
	if code != 1001 {
		t.Errorf("close code %d, want 1001", code)
	}
	stored := storedTimestamps(t, e.db, "s-final")
	if len(stored) == 0 {
		t.Fatal("the final flush committed nothing")
	}
	if len(got) != len(stored) {
		t.Errorf("client received %d readings before 1001, the final flush committed %d", len(got), len(stored))
	}
	for ts := range stored {
		if !got[ts] {
			t.Errorf("committed reading %s was not pushed before 1001", ts)
		}
	}
}
