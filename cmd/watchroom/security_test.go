package main

// Attacks from the security review, replayed against the running server:
// invented sensor ids, readings of unregistered sensors, command ids read
// by viewers.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
)

// securityMetrics scrapes the server's watchroom_* samples into
// "name{labels}" → value.
func securityMetrics(t *testing.T, s *testServer) map[string]float64 {
	t.Helper()
	addr := s.addr
	if a := lookupEnv(s.env, "WATCHROOM_METRICS_ADDR"); a != "" {
		addr = a
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "watchroom_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func waitMetric(t *testing.T, s *testServer, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := securityMetrics(t, s)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; metrics: %v", what, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countRows(t *testing.T, dbURL, query string, args ...any) int {
	t.Helper()
	conn := dbConn(t, dbURL)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

const (
	rejected        = `watchroom_readings_rejected_total{reason="%s"}`
	ingestedReading = "watchroom_readings_ingested_total"
)

// 2,000 invented sensor ids in one burst: the new-series cap holds, every
// refused message is counted, and no offline alert is raised for them,
// while a regular sensor among them is still reported when it falls
// silent. Takes a minute: the default stale limit is 60 s.
func TestSecurityInventedSensorsAreCappedAndNotAlerted(t *testing.T) {
	t.Parallel()
	const burst, invented = 256, 2000
	e := alertsEnv(t, "WATCHROOM_NEW_SERIES_RATE=1", fmt.Sprintf("WATCHROOM_NEW_SERIES_BURST=%d", burst))
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	pub := publisher(t, e.broker.URL())

	// A real sensor: ten readings make it regular.
	for i := range 10 {
		publish(t, pub, "sensors/real-1/temperature", strconv.Itoa(20+i%2))
	}
	start := time.Now()
	toks := make([]mqtt.Token, 0, invented)
	for i := range invented {
		toks = append(toks, pub.Publish(fmt.Sprintf("sensors/x-%d/temperature", i), 1, false, "1"))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	m := waitMetric(t, e.srv, "every message ingested or rejected", func(m map[string]float64) bool {
		return m[ingestedReading]+m[fmt.Sprintf(rejected, "new_series_limited")] >= 10+invented
	})
	elapsed := time.Since(start)

	series := countRows(t, e.db, `SELECT count(*) FROM sensors WHERE sensor_id LIKE 'x-%'`)
	// The burst minus real-1's series, plus one a second since.
	if most := burst - 1 + int(elapsed.Seconds()) + 1; series < burst-1 || series > most {
		t.Errorf("%d invented series stored in %v; want %d to %d", series, elapsed, burst-1, most)
	}
	if got := m[fmt.Sprintf(rejected, "new_series_limited")]; int(got) != invented-series {
		t.Errorf("rejected{new_series_limited} = %g; want %d (every refused message counted)", got, invented-series)
	}
	if n := strings.Count(e.srv.logs.String(), "reason=new_series_limited"); n < 1 || n > int(elapsed.Seconds())+2 {
		t.Errorf("%d log lines for new_series_limited in %v; want at least one, at most one a second", n, elapsed)
	}

	// A minute later: real-1 is reported offline, the invented ones are not.
	a, _ := ann.alert(90*time.Second, "real-1 offline", isAlert("real-1", model.AlertOffline, model.AlertOpen))
	if a.SensorID != "real-1" {
		t.Fatalf("alert %+v", a)
	}
	waitMetric(t, e.srv, "every invented series' silence counted", func(m map[string]float64) bool {
		return int(m["watchroom_alerts_offline_unwatched_total"]) >= series
	})
	time.Sleep(2 * time.Second) // two more stale checks
	if n := countRows(t, e.db, `SELECT count(*) FROM alerts WHERE kind = 'offline'`); n != 1 {
		t.Errorf("%d offline alerts stored; want only real-1's", n)
	}
	for _, msg := range ann.backlog {
		if msg.Type == "alert" && strings.Contains(string(msg.Data), `"sensor_id":"x-`) {
			t.Errorf("alert for an invented sensor: %s", msg.Data)
		}
	}
	m = securityMetrics(t, e.srv)
	if got := m["watchroom_alerts_offline_unwatched_total"]; int(got) != series {
		t.Errorf("offline_unwatched = %g; want %d (each stored invented series, once)", got, series)
	}
}

// In registered mode only registered devices' readings are stored; the
// others are acked, counted and leave the database unchanged.
func TestSecurityRegisteredModeRefusesUnregisteredSensors(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	broker := mqtttest.Start(t)
	srv := startServer(t, baseEnv(t, db, broker.URL(), "WATCHROOM_SENSORS=registered"))
	// Registered (and one revoked) once the server has migrated the
	// database, as `watchroom device add` would.
	conn := dbConn(t, db)
	if _, err := conn.Exec(context.Background(),
		`INSERT INTO devices (id, secret_hash, created_by) VALUES ('dev-1', '$7$101$c2FsdA==$aGFzaA==', 'test'), ('gone-1', 'x', 'test')`); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := conn.Exec(context.Background(), `UPDATE devices SET revoked_at = now() WHERE id = 'gone-1'`); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	conn.Close(context.Background())

	pub := publisher(t, broker.URL())
	publish(t, pub, "sensors/evil-1/temperature", "66")
	publish(t, pub, "sensors/gone-1/temperature", "66")
	publish(t, pub, "sensors/dev-1/temperature", "21.5")
	m := waitMetric(t, srv, "dev-1's reading and two rejections", func(m map[string]float64) bool {
		return m[ingestedReading] >= 1 && m[fmt.Sprintf(rejected, "unregistered")] >= 2
	})
	if m[ingestedReading] != 1 || m[fmt.Sprintf(rejected, "unregistered")] != 2 {
		t.Errorf("ingested %g, rejected{unregistered} %g; want 1 and 2", m[ingestedReading], m[fmt.Sprintf(rejected, "unregistered")])
	}
	if total, _ := countReadings(t, db, "dev-1"); total != 1 {
		t.Errorf("dev-1 has %d readings, want 1", total)
	}
	if n := countRows(t, db, `SELECT count(*) FROM readings WHERE sensor_id <> 'dev-1'`); n != 0 {
		t.Errorf("%d readings of unregistered sensors stored", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM sensors WHERE sensor_id <> 'dev-1'`); n != 0 {
		t.Errorf("%d sensors rows of unregistered sensors", n)
	}
	if !strings.Contains(srv.logs.String(), "reason=unregistered") {
		t.Error("no log line for the rejection")
	}
}

// A viewer or analyst sees the command history without command ids and
// params; operators see them.
func TestSecurityViewerCannotSeeCommandIDs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	addUser(t, e.db, "ann", "analyst", "ann-password")
	ws := connect(t, e.srv.addr, e.token)
	ws.send(map[string]any{"type": "command", "id": "c1", "data": map[string]any{
		"sensor_id": "s-1", "action": "calibrate_sensor", "params": map[string]any{"pin": "4711"}}})
	sent := ws.nextOf("command_sent", 10*time.Second)
	var ack struct {
		CommandID string `json:"command_id"`
	}
	if err := json.Unmarshal(sent.Data, &ack); err != nil || ack.CommandID == "" {
		t.Fatalf("command_sent %s: %v", sent.Data, err)
	}

	for _, tc := range []struct {
		user, password string
		wantIDs        bool
	}{
		{"victor", "victor-password", false},
		{"ann", "ann-password", false},
		{"alice", "alice-password", true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			var out struct {
				Commands []map[string]json.RawMessage `json:"commands"`
			}
			if code := getJSON(t, e.srv.addr, "/api/commands?sensor_id=s-1", login(t, e.srv.addr, tc.user, tc.password), &out); code != http.StatusOK {
				t.Fatalf("GET /api/commands = %d", code)
			}
			if len(out.Commands) != 1 {
				t.Fatalf("commands %v; want the one sent", out.Commands)
			}
			c := out.Commands[0]
			_, hasID := c["command_id"]
			_, hasParams := c["params"]
			if hasID != tc.wantIDs || hasParams != tc.wantIDs {
				t.Errorf("command_id shown %v, params shown %v; want %v", hasID, hasParams, tc.wantIDs)
			}
			if tc.wantIDs && string(c["command_id"]) != strconv.Quote(ack.CommandID) {
				t.Errorf("command_id %s, want %q", c["command_id"], ack.CommandID)
			}
			if string(c["action"]) != `"calibrate_sensor"` || string(c["status"]) == "" {
				t.Errorf("history row %v lacks action or status", c)
			}
		})
	}
}
