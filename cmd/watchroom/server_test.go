package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fasthttp/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/sim"
)

func publisher(t *testing.T, url string) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-pub-%d", time.Now().UnixNano())).
		SetConnectRetry(true).SetAutoReconnect(true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func countReadings(t *testing.T, dbURL, sensor string) (total, distinct int) {
	t.Helper()
	ctx := context.Background()
	conn := dbConn(t, dbURL)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT (metric, ts)) FROM readings WHERE sensor_id = $1", sensor).Scan(&total, &distinct); err != nil {
		t.Fatalf("count readings: %v", err)
	}
	return total, distinct
}

// env holds what every pipeline test needs: a database, a broker, a
// running server and a logged-in operator.
type env struct {
	db     string
	broker *mqtttest.Broker
	srv    *testServer
	token  string
}

func setup(t *testing.T, extra ...string) *env {
	t.Helper()
	e := &env{db: newDB(t), broker: mqtttest.Start(t)}
	addUser(t, e.db, "alice", "operator", "alice-password")
	addUser(t, e.db, "victor", "viewer", "victor-password")
	e.srv = startServer(t, baseEnv(t, e.db, e.broker.URL(), extra...))
	e.token = login(t, e.srv.addr, "alice", "alice-password")
	return e
}

func TestReadingFlowsFromMQTTToWebSocketAndDatabase(t *testing.T) {
	e := setup(t)
	ws := connect(t, e.srv.addr, e.token)
	pub := publisher(t, e.broker.URL())
	ts := time.Now().UTC().Truncate(time.Millisecond)
	publish(t, pub, "sensors/s-17/temperature", fmt.Sprintf(`{"value":23.5,"unit":"°C","ts":%q}`, ts.Format(time.RFC3339Nano)))

	m := ws.nextOf("reading", 10*time.Second)
	var r struct {
		SensorID string  `json:"sensor_id"`
		Metric   string  `json:"metric"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit"`
		TS       string  `json:"ts"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.SensorID != "s-17" || r.Metric != "temperature" || r.Value != 23.5 || r.Unit != "°C" || r.TS != ts.Format(model.ReadingTimeFormat) {
		t.Errorf("reading = %+v", r)
	}
	if total, _ := countReadings(t, e.db, "s-17"); total != 1 {
		t.Errorf("readings in database = %d, want 1 (it was pushed only after commit)", total)
	}
	var sensors []struct {
		SensorID  string  `json:"sensor_id"`
		LastValue float64 `json:"last_value"`
	}
	if code := getJSON(t, e.srv.addr, "/api/sensors", e.token, &sensors); code != 200 || len(sensors) != 1 || sensors[0].LastValue != 23.5 {
		t.Errorf("GET /api/sensors = %d %+v", code, sensors)
	}
	var hist struct {
		Readings []json.RawMessage `json:"readings"`
	}
	if code := getJSON(t, e.srv.addr, "/api/sensors/s-17/readings?metric=temperature", e.token, &hist); code != 200 || len(hist.Readings) != 1 {
		t.Errorf("GET readings = %d, %d readings", code, len(hist.Readings))
	}
}

func TestAuthFailuresCloseWith4001(t *testing.T) {
	const secret = "test-secret-0123456789abcdef0123456789"
	e := setup(t, "WATCHROOM_WS_AUTH_TIMEOUT=500ms", "WATCHROOM_JWT_SECRET="+secret)
	past, err := auth.NewTokens([]byte(secret), time.Hour, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := past.Issue("alice", model.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		query string
		send  any
	}{
		{"no auth in time", "", nil},
		{"not an auth message", "", map[string]any{"type": "ping", "id": 1}},
		{"bad signature", "", map[string]any{"type": "auth", "data": map[string]string{"token": e.token[:len(e.token)-4] + "AAAA"}}},
		{"expired", "", map[string]any{"type": "auth", "data": map[string]string{"token": expired}}},
		{"alg none", "", map[string]any{"type": "auth", "data": map[string]string{"token": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiIsImlzcyI6IndhdGNocm9vbSIsImV4cCI6NDEwMjQ0NDgwMH0."}}},
		{"token in query", "?token=" + e.token, map[string]any{"type": "auth", "data": map[string]string{"token": e.token}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e.srv.addr, tc.query)
			if tc.send != nil {
				c.send(tc.send)
			}
			if m := c.next(5 * time.Second); m.Type != "auth_error" {
				t.Errorf("first message %q, want auth_error", m.Type)
			}
			if code := c.closeCode(5 * time.Second); code != 4001 {
				t.Errorf("close code %d, want 4001", code)
			}
		})
	}
}

func TestPingPongBothForms(t *testing.T) {
	e := setup(t)
	ws := connect(t, e.srv.addr, e.token)
	ws.send(map[string]any{"type": "ping", "id": 7})
	if m := ws.next(5 * time.Second); m.Type != "pong" || string(m.Ref) != "7" {
		t.Errorf("got %s ref %s, want pong ref 7", m.Type, m.Ref)
	}
	if err := ws.conn.WriteMessage(1, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if m := ws.next(5 * time.Second); m.Raw != "pong" {
		t.Errorf("got %+v, want text pong", m)
	}
}

func runSimulator(t *testing.T, url string) {
	t.Helper()
	s, err := sim.New(sim.Config{BrokerURL: url, Sensors: 3, Rate: 0.2, CommandDelay: 50 * time.Millisecond}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCommandRoundTripWithSimulator(t *testing.T) {
	e := setup(t, "WATCHROOM_COMMAND_TIMEOUT=1500ms")
	runSimulator(t, e.broker.URL())
	ws := connect(t, e.srv.addr, e.token)

	// The simulator needs a moment to subscribe; retry the first command
	// until the device answers rather than sleeping a fixed time.
	var resp struct {
		CommandID string `json:"command_id"`
		Status    string `json:"status"`
		Message   string `json:"message"`
	}
	for attempt := 0; ; attempt++ {
		ws.send(map[string]any{"type": "command", "id": "c" + strconv.Itoa(attempt), "data": map[string]any{"sensor_id": "s-1", "action": "calibrate_sensor", "params": map[string]any{}}})
		sent := ws.nextOf("command_sent", 5*time.Second)
		if string(sent.Ref) != strconv.Quote("c"+strconv.Itoa(attempt)) {
			t.Fatalf("command_sent ref = %s", sent.Ref)
		}
		m := ws.nextOf("command_response", 5*time.Second)
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatal(err)
		}
		ws.send(map[string]any{"type": "ack", "ref": json.RawMessage(m.ID)})
		if resp.Status == "success" || attempt == 5 {
			if string(m.Ref) != strconv.Quote("c"+strconv.Itoa(attempt)) {
				t.Errorf("command_response ref = %s", m.Ref)
			}
			break
		}
	}
	if resp.Status != "success" {
		t.Fatalf("calibrate_sensor status = %s (%s), want success", resp.Status, resp.Message)
	}

	// A sensor no device answers for times out.
	ws.send(map[string]any{"type": "command", "id": "c-missing", "data": map[string]any{"sensor_id": "s-999", "action": "calibrate_sensor"}})
	m := ws.nextOf("command_response", 10*time.Second)
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "timeout" || string(m.Ref) != `"c-missing"` {
		t.Errorf("missing device: status %s ref %s, want timeout ref c-missing", resp.Status, m.Ref)
	}

	var hist struct {
		Commands []struct {
			SensorID string `json:"sensor_id"`
			Status   string `json:"status"`
			IssuedBy string `json:"issued_by"`
		} `json:"commands"`
	}
	getJSON(t, e.srv.addr, "/api/commands?sensor_id=s-999", e.token, &hist)
	if len(hist.Commands) != 1 || hist.Commands[0].Status != "timeout" || hist.Commands[0].IssuedBy != "alice" {
		t.Errorf("audit of s-999 = %+v", hist.Commands)
	}

	// Viewers may not send commands.
	vws := connect(t, e.srv.addr, login(t, e.srv.addr, "victor", "victor-password"))
	vws.send(map[string]any{"type": "command", "id": 9, "data": map[string]any{"sensor_id": "s-1", "action": "calibrate_sensor"}})
	if m := vws.nextOf("error", 5*time.Second); !jsonHas(m.Data, "code", "forbidden") || string(m.Ref) != "9" {
		t.Errorf("viewer command: %s ref %s", m.Data, m.Ref)
	}
}

func TestUnackedCommandResponseIsRedeliveredOnReconnect(t *testing.T) {
	e := setup(t, "WATCHROOM_COMMAND_TIMEOUT=300ms")
	ws := connect(t, e.srv.addr, e.token)
	ws.send(map[string]any{"type": "command", "id": "c1", "data": map[string]any{"sensor_id": "s-404", "action": "calibrate_sensor"}})
	first := ws.nextOf("command_response", 10*time.Second)
	ws.conn.Close() // without acking

	ws2 := connect(t, e.srv.addr, e.token)
	again := ws2.nextOf("command_response", 5*time.Second)
	if string(again.ID) != string(first.ID) || string(again.Ref) != `"c1"` {
		t.Fatalf("redelivered id %s ref %s, want id %s ref \"c1\"", again.ID, again.Ref, first.ID)
	}
	ws2.send(map[string]any{"type": "ack", "ref": json.RawMessage(again.ID)})
	ws2.send(map[string]any{"type": "ping", "id": "after-ack"})
	ws2.nextOf("pong", 5*time.Second) // the ack was processed before the ping
	ws2.conn.Close()

	ws3 := connect(t, e.srv.addr, e.token)
	ws3.send(map[string]any{"type": "ping", "id": "probe"})
	if m := ws3.next(5 * time.Second); m.Type != "pong" {
		t.Errorf("after ack, reconnect got %s %s, want nothing before pong", m.Type, m.Data)
	}
}

// TestStalledClientIsClosedWhileFastClientKeepsReceiving: a client that
// stops reading has its readings thinned and is closed once one frame
// cannot be written within the write deadline (counted as write_timeout);
// a fast client on the same server gets every reading, in order.
//
// Batches of at most 100 readings: thinning looks at what is queued when a
// batch arrives, and a whole backlog committed as a few batches of 5,000
// can reach the stalled client as one item the writer takes at once,
// followed by one more queued behind it before the write deadline closes
// the connection, with nothing ever past the high-water mark.
func TestStalledClientIsClosedWhileFastClientKeepsReceiving(t *testing.T) {
	e := setup(t, "WATCHROOM_WS_WRITE_TIMEOUT=2s", "WATCHROOM_WS_HIGH_WATER=1000", "WATCHROOM_BATCH_SIZE=100")
	fast := connect(t, e.srv.addr, e.token)
	slow := connectSlow(t, e.srv.addr, e.token)

	pub := publisher(t, e.broker.URL())
	const n = 60000
	base := time.Now().Add(-time.Hour).UTC()
	go func() {
		for i := 0; i < n; i++ {
			ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
			pub.Publish("sensors/s-1/load", 1, false, fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts))
		}
	}()
	for i := 0; i < n; i++ {
		m := fast.nextOf("reading", 30*time.Second)
		var r struct{ Value float64 }
		_ = json.Unmarshal(m.Data, &r)
		if int(r.Value) != i {
			t.Fatalf("fast client got value %v at position %d (out of order or lost)", r.Value, i)
		}
	}
	metrics := lookupEnv(e.srv.env, "WATCHROOM_METRICS_ADDR")
	deadline := time.Now().Add(30 * time.Second)
	for scrapeMetrics(t, metrics)[`watchroom_ws_disconnects_total{reason="write_timeout"}`] < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client was not closed for a write timeout within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	go slow.readLoop() // drain what the kernel holds; no close frame can follow a timed-out write
	if code := slow.closeCode(30 * time.Second); code != 1006 {
		t.Errorf("stalled client close code %d, want 1006 (closed without a close frame)", code)
	}
	if thinned := scrapeMetrics(t, metrics)["watchroom_ws_readings_thinned_total"]; thinned == 0 {
		t.Errorf("nothing thinned for a client that read nothing")
	}
	var stats struct {
		FailedDeliveries int `json:"failed_deliveries"`
	}
	getJSON(t, e.srv.addr, "/api/stats", e.token, &stats)
	if stats.FailedDeliveries == 0 {
		t.Errorf("stats failed_deliveries = 0 after a write timeout")
	}
}

// connectSlow authenticates a client with a tiny socket receive buffer and
// does not read from it (its readLoop is not started), so the server's
// send queue for it overflows.
func connectSlow(t *testing.T, addr, token string) *wsClient {
	t.Helper()
	d := *websocket.DefaultDialer
	d.NetDial = func(network, address string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		return nd.Dial(network, address)
	}
	conn, _, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	b, _ := json.Marshal(map[string]any{"type": "auth", "data": map[string]string{"token": token}})
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	return &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 1_000_000), closed: make(chan int, 1)}
}

func jsonHas(data json.RawMessage, key, want string) bool {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m[key] == want
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func dbConn(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

// storedTimestamps returns the ts of sensor's readings in UTC, RFC 3339
// with as many decimals as they need.
func storedTimestamps(t *testing.T, dbURL, sensor string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn := dbConn(t, dbURL)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT ts FROM readings WHERE sensor_id = $1", sensor)
	if err != nil {
		t.Fatalf("select readings: %v", err)
	}
	tss, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatalf("select readings: %v", err)
	}
	out := map[string]bool{}
	for _, ts := range tss {
		out[ts.UTC().Format(time.RFC3339Nano)] = true
	}
	return out
}

// TestTaskThatFailsAtOnce: serve's select takes the value of a task that
// ended on its own; stop must still give that error at once instead of
// waiting for the task again. The stop wait's clock fires immediately, so
// a stop that waited would report "did not stop" instead of the error.
func TestTaskThatFailsAtOnce(t *testing.T) {
	boom := errors.New("boom")
	tk := start(func(context.Context) error { return boom })
	fired := make(chan time.Time)
	close(fired)
	tk.after = func(time.Duration) <-chan time.Time { return fired }
	<-tk.done // what serve's select does
	if !errors.Is(tk.err, boom) {
		t.Fatalf("err after done = %v, want boom", tk.err)
	}
	for i := range 3 {
		if err := tk.stop(); !errors.Is(err, boom) {
			t.Fatalf("stop #%d = %v, want the task's error", i+1, err)
		}
	}
}

// TestTaskStopWaitsForTheTask: a running task is cancelled and waited for;
// one that ignores its context is given up on when the wait's clock fires.
func TestTaskStopWaitsForTheTask(t *testing.T) {
	tk := start(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	tk.after = func(time.Duration) <-chan time.Time { return nil } // never fires
	if err := tk.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("stop = %v, want context.Canceled", err)
	}

	release := make(chan struct{})
	defer close(release)
	stuck := start(func(context.Context) error { <-release; return nil })
	fire := make(chan time.Time, 1)
	stuck.after = func(time.Duration) <-chan time.Time { return fire }
	fire <- time.Time{}
	if err := stuck.stop(); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("stop of a stuck task = %v, want did not stop", err)
	}
}

func TestMemoryReleaser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts []int64 // the first is read at start, one more per tick
		frees  int
	}{
		{"steady", []int64{100, 100, 100}, 0},
		{"small drop", []int64{0, 2000, 1600, 1501}, 0},
		{"storm dropped", []int64{0, 2000, 0}, 1},
		{"drop spread over ticks", []int64{0, 2000, 1800, 1600, 1400}, 1},
		{"once per release", []int64{2000, 0, 0, 0}, 1},
		{"rise and fall again", []int64{2000, 0, 700, 100}, 2},
		{"exactly the threshold", []int64{memoryReleaseDrop, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Called by run only: once at start, then once per tick.
			i := 0
			active := func() int64 { i++; return tc.counts[i-1] }
			frees := 0
			reg := prometheus.NewRegistry()
			m := newMemoryReleaser(active, func() { frees++ }, reg, discardLogger())
			ctx, cancel := context.WithCancel(context.Background())
			ticks := make(chan time.Time) // unbuffered: a send returns once run took the tick
			done := make(chan struct{})
			go func() { defer close(done); m.run(ctx, ticks) }()
			for range tc.counts[1:] {
				ticks <- time.Time{}
			}
			cancel()
			<-done // run has handled the last tick
			if frees != tc.frees {
				t.Errorf("FreeOSMemory called %d times, want %d", frees, tc.frees)
			}
			if got := testutil.ToFloat64(m.released); got != float64(tc.frees) {
				t.Errorf("watchroom_memory_released_total = %v, want %d", got, tc.frees)
			}
		})
	}
}
