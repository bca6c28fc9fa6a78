package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fasthttp/websocket"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/sim"
)

// BenchmarkAlertLatency measures reading → alert latency end to end: an
// out-of-range reading published over MQTT (QoS 1, through Mosquitto) to
// the running server, ingested (batch, COPY, commit), evaluated, the alert
// stored and posted to room "alerts", until it arrives on the WebSocket of
// each of alertBenchUsers users, who ack it. Meanwhile the simulator
// publishes a background load of normal readings. Each probe is a new
// sensor whose rule has max 100, so each opens a new alert. Run with
//
//	go test -run '^$' -bench AlertLatency ./cmd/watchroom
//
// The work runs once (b.N is 1); the figures are the reported metrics:
// percentiles over every (probe, user) pair, in milliseconds, the number
// of alerts that never arrived (must be 0) and, for comparison, the
// latency of the same probe readings arriving as "reading" messages
// (reading_p50_ms, reading_p99_ms): the pipeline without detection.
// docs/alerts.md has the figures. Nothing is asserted.
func BenchmarkAlertLatency(b *testing.B) {
	for _, load := range []int{0, 1000} {
		b.Run(fmt.Sprintf("background=%d/s", load), func(b *testing.B) {
			benchmarkAlertLatency(b, load)
		})
	}
}

const (
	alertBenchSecret = "alert-bench-secret-0123456789abcdef0123456789"
	alertBenchUsers  = 10
	alertBenchProbes = 300
	alertBenchEvery  = 40 * time.Millisecond // one probe per 40 ms: 25 new alerts a second
)

func benchmarkAlertLatency(b *testing.B, background int) {
	db := pgtest.NewDatabase(b)
	broker := mqtttest.Start(b)
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(b))
	env := []string{
		"WATCHROOM_DATABASE_URL=" + db,
		"WATCHROOM_MQTT_URL=" + broker.URL(),
		"WATCHROOM_HTTP_ADDR=" + addr,
		"WATCHROOM_METRICS_ADDR=",
		"WATCHROOM_MQTT_CLIENT_ID=watchroom-alert-bench",
		"WATCHROOM_LOG_LEVEL=warn",
		"WATCHROOM_JWT_SECRET=" + alertBenchSecret,
	}
	alertBenchRun(b, []string{"user", "add", "--name", "op", "--role", "operator", "--password-stdin"}, db, "op-password")
	for i := range alertBenchUsers {
		alertBenchRun(b, []string{"user", "add", "--name", fmt.Sprintf("u%d", i), "--role", "analyst", "--password-stdin"}, db, "user-password")
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, strings.NewReader(""), io.Discard, logs) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Errorf("server did not stop")
		}
		if b.Failed() {
			b.Logf("server log:\n%s", tail(logs.String(), 8000))
		}
	})
	alertBenchWaitReady(b, addr, done, logs)

	// Tokens signed here: more users than the login rate limit lets in.
	tokens, err := auth.NewTokens([]byte(alertBenchSecret), time.Hour, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	token := func(user string, role model.Role) string {
		tok, _, err := tokens.Issue(user, role)
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	opToken := token("op", model.RoleOperator)
	for i := range alertBenchProbes {
		body := `{"rules":[{"metric":"temperature","kind":"threshold","max":100}]}`
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/api/sensors/probe-%d/rules", addr, i), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+opToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("PUT rules: %v %v", err, resp)
		}
		resp.Body.Close()
	}

	// The users: each records when every probe's alert arrives. Like
	// dashboards they also receive every reading; user 0 records when each
	// probe's reading arrives, the pipeline's latency without detection,
	// for comparison.
	type arrival struct {
		user, probe int
		at          time.Time
	}
	arrivals := make(chan arrival, alertBenchUsers*alertBenchProbes)
	readingArr := make(chan arrival, alertBenchProbes)
	var readers sync.WaitGroup
	var conns []*websocket.Conn
	for u := range alertBenchUsers {
		tok := token(fmt.Sprintf("u%d", u), model.RoleAnalyst)
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		auth, _ := json.Marshal(map[string]any{"type": "auth", "data": map[string]string{"token": tok}})
		_ = c.WriteMessage(websocket.TextMessage, auth)
		readers.Go(func() {
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				for _, m := range alertBenchSplit(data) {
					if m.Type == "reading" && u == 0 {
						var r model.Reading
						var p int
						if json.Unmarshal(m.Data, &r) == nil && alertBenchProbe(r.SensorID, &p) {
							readingArr <- arrival{u, p, now}
						}
					}
					if m.Type != "alert" {
						continue
					}
					var a model.Alert
					if json.Unmarshal(m.Data, &a) != nil {
						continue
					}
					ack, _ := json.Marshal(map[string]any{"type": "ack", "ref": m.ID})
					_ = c.WriteMessage(websocket.TextMessage, ack) // this goroutine is the only writer after auth
					var p int
					if a.State == model.AlertOpen && a.Count == 1 && alertBenchProbe(a.SensorID, &p) {
						arrivals <- arrival{u, p, now}
					}
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // authenticated

	if background > 0 {
		sm, err := sim.New(sim.Config{BrokerURL: broker.URL(), ClientID: "alert-bench-sim", Sensors: 100,
			Rate: float64(background) / 100, Seed: 1, CommandDelay: -1}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		simCtx, simCancel := context.WithCancel(context.Background())
		simDone := make(chan struct{})
		go func() { _ = sm.Run(simCtx); close(simDone) }()
		defer func() { simCancel(); <-simDone }()
		time.Sleep(2 * time.Second) // the load is running
	}

	pub := alertBenchPublisher(b, broker.URL())
	sent := make([]time.Time, alertBenchProbes)
	b.ResetTimer()
	tick := time.NewTicker(alertBenchEvery)
	for i := range alertBenchProbes {
		<-tick.C
		sent[i] = time.Now()
		tok := pub.Publish(fmt.Sprintf("sensors/probe-%d/temperature", i), 1, false, `{"value":150}`)
		if i%50 == 0 && (!tok.WaitTimeout(10*time.Second) || tok.Error() != nil) {
			b.Fatalf("publish: %v", tok.Error())
		}
	}
	tick.Stop()

	got := make(map[[2]int]time.Duration, alertBenchUsers*alertBenchProbes)
	deadline := time.After(20 * time.Second)
collect:
	for len(got) < alertBenchUsers*alertBenchProbes {
		select {
		case a := <-arrivals:
			got[[2]int{a.user, a.probe}] = a.at.Sub(sent[a.probe])
		case <-deadline:
			break collect
		}
	}
	b.StopTimer()
	for _, c := range conns {
		_ = c.Close()
	}
	readers.Wait()

	close(readingArr)
	var readingLat []time.Duration
	for a := range readingArr {
		readingLat = append(readingLat, a.at.Sub(sent[a.probe]))
	}
	lat := make([]time.Duration, 0, len(got))
	for _, d := range got {
		lat = append(lat, d)
	}
	b.ReportMetric(alertBenchPercentile(lat, 0.50), "p50_ms")
	b.ReportMetric(alertBenchPercentile(lat, 0.95), "p95_ms")
	b.ReportMetric(alertBenchPercentile(lat, 0.99), "p99_ms")
	b.ReportMetric(alertBenchPercentile(lat, 1), "max_ms")
	b.ReportMetric(alertBenchPercentile(readingLat, 0.50), "reading_p50_ms")
	b.ReportMetric(alertBenchPercentile(readingLat, 0.99), "reading_p99_ms")
	b.ReportMetric(float64(alertBenchUsers*alertBenchProbes-len(got)), "missing")
	b.ReportMetric(0, "ns/op")
}

// alertBenchPercentile returns the p-quantile of ds in milliseconds (0 if empty).
func alertBenchPercentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
}

func alertBenchProbe(sensor string, p *int) bool {
	n, err := fmt.Sscanf(sensor, "probe-%d", p)
	return err == nil && n == 1
}

// splitBatch returns the messages of one frame, a batch or a single one.
func alertBenchSplit(data []byte) []wsMsg {
	var m wsMsg
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	if m.Type != "batch" {
		return []wsMsg{m}
	}
	var inner []wsMsg
	_ = json.Unmarshal(m.Data, &inner)
	return inner
}

func alertBenchRun(b *testing.B, args []string, db, stdin string) {
	b.Helper()
	var errOut bytes.Buffer
	if err := run(context.Background(), args, []string{"WATCHROOM_DATABASE_URL=" + db}, strings.NewReader(stdin+"\n"), io.Discard, &errOut); err != nil {
		b.Fatalf("%v: %v %s", args, err, errOut.String())
	}
}

func alertBenchWaitReady(b *testing.B, addr string, done chan error, logs *syncBuffer) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			b.Fatalf("server exited during start: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("server not ready within 20s\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alertBenchPublisher(b *testing.B, url string) mqtt.Client {
	b.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("alert-bench-pub"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("publisher connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	return c
}
