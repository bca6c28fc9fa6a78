package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fasthttp/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/sim"
)

// Benchmarks of the whole pipeline: `watchroom serve` run in-process
// through run(), against a fresh PostgreSQL database and a private
// Mosquitto (the production in-flight and queue limits), driven over
// loopback MQTT and read by real WebSocket clients. docs/benchmarks.md
// has the figures and what they mean. Run with
//
//	go test -run '^$' -bench . -benchmem ./cmd/watchroom
//
// Each sub-benchmark is a fixed amount of work that runs once (b.N is 1:
// one run takes longer than the default -benchtime, so the runner does not
// repeat it; do not raise -benchtime). ns/op is suppressed and B/op and
// allocs/op are totals for the whole process, clients included; the
// figures that matter are the reported metrics. Nothing is asserted:
// readings lost are reported, and must read 0.

const (
	benchClients  = 100                    // WebSocket clients of the latency benchmark
	benchRate     = 1000                   // readings per second offered in the latency benchmark
	benchWarmup   = 500 * time.Millisecond // published first, not in the latency figures
	benchMeasured = 5 * time.Second        // published after the warm-up, measured
	benchDrain    = 20 * time.Second       // bound on waiting for the last readings

	benchReadings   = 50_000 // throughput benchmark; below Mosquitto's max_queued_messages (100,000)
	benchPublishers = 4
	benchStoreWait  = 2 * time.Minute // bound on waiting until all are stored
)

// BenchmarkEndToEnd measures publish→receive latency: readings published
// at a fixed 1,000/s at QoS 1, through the broker, ingest (batch, COPY,
// commit, ack) and the hub to 100 WebSocket clients, each of which records
// when every reading arrives. The flush interval varies at the default
// batch size: at 1,000 readings/s a batch holds a few dozen readings at
// most, so the batch size plays no part here. Two more runs at the
// defaults use the simulator (internal/sim) as the load source, and the
// embedded broker instead of Mosquitto.
func BenchmarkEndToEnd(b *testing.B) {
	for _, flush := range []string{"2ms", "5ms", "10ms", "25ms"} {
		b.Run("flush="+flush+"/batch=1000", func(b *testing.B) {
			benchmarkLatency(b, startBenchStack(b, stackOptions{batch: 1000, flush: flush}), false)
		})
	}
	b.Run("simulator/flush=10ms/batch=1000", func(b *testing.B) {
		benchmarkLatency(b, startBenchStack(b, stackOptions{batch: 1000, flush: "10ms"}), true)
	})
	b.Run("embedded-broker/flush=10ms/batch=1000", func(b *testing.B) {
		benchmarkLatency(b, startBenchStack(b, stackOptions{batch: 1000, flush: "10ms", embedded: true}), false)
	})
}

// BenchmarkIngestThroughput measures how fast readings reach PostgreSQL,
// with no WebSocket client connected, in two ways:
//
//   - live: several publishers send benchReadings readings at QoS 1 as fast
//     as they can while the server runs, and the database is polled until
//     all are stored. Publishers, broker and server share the CPU.
//   - backlog: the server is stopped, the same readings are published and
//     held by the broker for its persistent session, then the server is
//     started and the rate at which it stores them is measured from the
//     first stored reading to the last. This is the catch-up after a
//     restart or an outage, and the ingest path's own ceiling.
func BenchmarkIngestThroughput(b *testing.B) {
	cases := []struct {
		mode  string
		batch int
		flush string
	}{
		{"live", 500, "10ms"}, {"live", 1000, "10ms"}, {"live", 5000, "10ms"},
		{"live", 1000, "2ms"}, {"live", 1000, "5ms"}, {"live", 1000, "25ms"},
		{"backlog", 500, "10ms"}, {"backlog", 1000, "10ms"}, {"backlog", 5000, "10ms"},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/flush=%s/batch=%d", c.mode, c.flush, c.batch), func(b *testing.B) {
			s := startBenchStack(b, stackOptions{batch: c.batch, flush: c.flush})
			if c.mode == "backlog" {
				benchmarkBacklog(b, s)
			} else {
				benchmarkThroughput(b, s)
			}
		})
	}
}

// stackOptions choose the server's batching and its broker.
type stackOptions struct {
	batch    int
	flush    string   // a Go duration
	embedded bool     // the server's embedded broker instead of Mosquitto
	env      []string // more WATCHROOM_* settings
}

// benchStack is a server with its own database and broker.
type benchStack struct {
	db      string
	mqttURL string
	addr    string
	metrics string // the metrics listener
	env     []string
	token   string
	logs    *syncBuffer

	cancel context.CancelFunc // of the running server; nil when stopped
	done   chan error
}

// startBenchStack starts a database, a broker and the server; cleanups
// stop them in reverse order.
func startBenchStack(b *testing.B, opt stackOptions) *benchStack {
	b.Helper()
	s := &benchStack{db: pgtest.NewDatabase(b), logs: &syncBuffer{}}
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"user", "add", "--name", "bench", "--role", "viewer", "--password-stdin"},
		[]string{"WATCHROOM_DATABASE_URL=" + s.db}, strings.NewReader("bench-password\n"), io.Discard, &errOut)
	if err != nil {
		b.Fatalf("user add: %v %s", err, errOut.String())
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(b))
	s.metrics = fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(b))
	s.env = []string{
		"WATCHROOM_DATABASE_URL=" + s.db,
		"WATCHROOM_HTTP_ADDR=" + s.addr,
		"WATCHROOM_METRICS_ADDR=" + s.metrics,
		"WATCHROOM_MQTT_CLIENT_ID=watchroom-bench",
		"WATCHROOM_LOG_LEVEL=warn",
		"WATCHROOM_BATCH_SIZE=" + strconv.Itoa(opt.batch),
		"WATCHROOM_FLUSH_INTERVAL=" + opt.flush,
	}
	s.env = append(s.env, opt.env...)
	if opt.embedded {
		listen := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(b))
		s.env = append(s.env, "WATCHROOM_MQTT_URL=", "WATCHROOM_MQTT_LISTEN="+listen)
		s.mqttURL = "tcp://" + listen
	} else {
		s.mqttURL = mqtttest.Start(b).URL()
		s.env = append(s.env, "WATCHROOM_MQTT_URL="+s.mqttURL)
	}
	b.Cleanup(func() {
		s.stop(b)
		if b.Failed() {
			b.Logf("server log:\n%s", tail(s.logs.String(), 8000))
		}
	})
	s.start(b)
	s.waitReady(b)
	s.token = benchLogin(b, s.addr)
	return s
}

// start runs the server in-process, as `watchroom serve` would.
func (s *benchStack) start(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func(done chan<- error) {
		done <- run(ctx, []string{"serve"}, s.env, strings.NewReader(""), io.Discard, s.logs)
	}(s.done)
}

// waitReady waits until /readyz answers 200.
func (s *benchStack) waitReady(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			b.Fatalf("server exited during start: %v\n%s", err, s.logs.String())
		default:
		}
		if resp, err := http.Get("http://" + s.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("server not ready within 20s\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down as SIGTERM would; a no-op when stopped.
func (s *benchStack) stop(b *testing.B) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			b.Errorf("server returned %v", err)
		}
	case <-time.After(30 * time.Second):
		b.Errorf("server did not stop within 30s")
	}
}

func benchLogin(b *testing.B, addr string) string {
	b.Helper()
	resp, err := http.Post("http://"+addr+"/api/login", "application/json",
		strings.NewReader(`{"username":"bench","password":"bench-password"}`))
	if err != nil {
		b.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		b.Fatalf("login: status %d, err %v", resp.StatusCode, err)
	}
	return out.Token
}

// benchPublisher connects an MQTT client with a clean session.
func benchPublisher(b *testing.B, url, id string) mqtt.Client {
	b.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("publisher %s: connect: %v", id, tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(250) })
	return c
}

// waitTokens waits for the PUBACK of every publish.
func waitTokens(toks []mqtt.Token, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, tok := range toks {
		if !tok.WaitTimeout(time.Until(deadline)) {
			return fmt.Errorf("no PUBACK within %v", within)
		}
		if err := tok.Error(); err != nil {
			return err
		}
	}
	return nil
}

// benchmarkLatency publishes for benchWarmup+benchMeasured at benchRate,
// waits until every client has every stored reading (or benchDrain
// passes) and reports the latency percentiles of the measured readings.
func benchmarkLatency(b *testing.B, s *benchStack, useSim bool) {
	total := int(benchRate * (benchWarmup + benchMeasured) / time.Second)
	warm := int(benchRate * benchWarmup / time.Second)
	// baseNs is the ts of reading 0, a whole millisecond: reading i has ts
	// base + i ms, and the server sends ts back at millisecond precision,
	// which names the reading exactly. fromNs is when the simulator's
	// measured readings start. Both are set when publishing starts, while
	// the clients' readers already run, hence atomics.
	var baseNs, fromNs atomic.Int64
	sentAt := make([]atomic.Int64, total) // wall-clock ns just before Publish
	var sent sentFunc
	if useSim {
		// The simulator stamps ts when it publishes (µs precision); the
		// client sees it cut to the millisecond, so these latencies are
		// too high by up to 1 ms.
		sent = func(ts time.Time) (time.Time, bool, bool) {
			return ts, ts.UnixNano() >= fromNs.Load(), true
		}
	} else {
		sent = func(ts time.Time) (time.Time, bool, bool) {
			i := int((ts.UnixNano() - baseNs.Load()) / int64(time.Millisecond))
			if i < 0 || i >= total || sentAt[i].Load() == 0 {
				return time.Time{}, false, false
			}
			return time.Unix(0, sentAt[i].Load()), i >= warm, true
		}
	}
	clients := connectBenchClients(b, s.addr, s.token, benchClients, sent)
	conn := benchConn(b, s.db)
	cpuBefore, cpuFrom := readDBCPU(b, conn), time.Now()

	var published int
	var elapsed time.Duration
	simLogs := &syncBuffer{}
	if useSim {
		// 100 sensors; every fifth sends two metrics in one message, so
		// 100 sensors at 25/3 messages/s each make 1,000 readings/s.
		sm, err := sim.New(sim.Config{BrokerURL: s.mqttURL, ClientID: "bench-sim", Sensors: 100,
			Rate: benchRate / 120.0, Seed: 1, CommandDelay: -1},
			slog.New(slog.NewTextHandler(simLogs, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), benchWarmup+benchMeasured)
		defer cancel()
		fromNs.Store(time.Now().Add(benchWarmup).UnixNano())
		// Run returns once ctx ends and its last publishes are confirmed.
		if err := sm.Run(ctx); err != nil {
			b.Fatalf("simulator: %v", err)
		}
		elapsed = benchWarmup + benchMeasured
		published = int(sm.Published())
	} else {
		pub := benchPublisher(b, s.mqttURL, "bench-latency-pub")
		toks := make([]mqtt.Token, 0, total)
		start := time.Now()
		base := start.Truncate(time.Millisecond)
		baseNs.Store(base.UnixNano())
		for i := range total {
			due := start.Add(time.Duration(i) * time.Second / benchRate)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			ts := base.Add(time.Duration(i) * time.Millisecond).UnixMilli()
			sentAt[i].Store(time.Now().UnixNano())
			toks = append(toks, pub.Publish(fmt.Sprintf("sensors/e2e-%d/temperature", i%100), 1, false,
				fmt.Sprintf(`{"value":%d,"unit":"°C","ts":%d}`, i, ts)))
		}
		elapsed = time.Since(start)
		if err := waitTokens(toks, benchDrain); err != nil {
			b.Fatalf("publish: %v", err)
		}
		published = total
	}

	// Every published reading must reach the database and every client.
	stored := waitStored(b, conn, published, benchDrain)
	expect := published
	if useSim {
		// Published can miss a publish made as the simulator stopped
		// (it counts only those whose token it queued), so expect
		// whatever was stored if that is more.
		expect = max(published, stored)
	}
	deadline := time.Now().Add(benchDrain)
	for _, c := range clients {
		for c.distinct.Load() < int64(expect) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	dbBusy := readDBCPU(b, conn).since(cpuBefore).Seconds() / time.Since(cpuFrom).Seconds()
	var ended int // connections the server ended
	for _, c := range clients {
		select {
		case <-c.done:
			ended++
		default:
		}
	}
	// End the readers before reading what they collected.
	for _, c := range clients {
		_ = c.ws.Close()
		<-c.done
	}

	var lat []time.Duration
	var lost, dups, bad int
	for _, c := range clients {
		lat = append(lat, c.lat...)
		lost += max(expect-len(c.seen), 0)
		dups += c.dups
		bad += c.bad
	}
	if len(lat) == 0 {
		b.Fatalf("no latency measured (lost %d, bad %d)", lost, bad)
	}
	if lost+dups+ended > 0 || stored != expect {
		// Reported, not failed; the logs say why.
		b.Logf("lost %d, duplicates %d, connections ended by the server %d, stored %d of %d published\nserver log:\n%s\nsimulator log:\n%s",
			lost, dups, ended, stored, expect, tail(s.logs.String(), 6000), tail(simLogs.String(), 2000))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.90), "p90_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
	b.ReportMetric(float64(published)/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(expect-stored), "db_missing")
	b.ReportMetric(float64(dups), "dups")
	b.ReportMetric(100*dbBusy, "db_cpu_%")
	reportIngestMetrics(b, s.metrics, elapsed)
	if bad > 0 {
		b.Errorf("%d readings on /ws that were never published or could not be decoded", bad)
	}
}

// benchmarkThroughput publishes benchReadings readings from
// benchPublishers clients as fast as they go while the server runs, and
// polls PostgreSQL until all are stored.
func benchmarkThroughput(b *testing.B, s *benchStack) {
	conn := benchConn(b, s.db)
	pubs := connectPublishers(b, s.mqttURL)
	cpuBefore := readDBCPU(b, conn)
	start := time.Now()
	var published time.Duration
	pubErr := make(chan error, 1)
	go func() {
		err := publishAll(pubs)
		published = time.Since(start)
		pubErr <- err
	}()
	var stored int
	deadline := time.Now().Add(benchStoreWait)
	for stored < benchReadings && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		stored = countAll(b, conn)
	}
	elapsed := time.Since(start)
	dbBusy := readDBCPU(b, conn).since(cpuBefore).Seconds() / elapsed.Seconds()
	if err := <-pubErr; err != nil {
		b.Fatalf("publish: %v", err)
	}
	if stored < benchReadings {
		b.Fatalf("%d of %d readings stored after %v", stored, benchReadings, benchStoreWait)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchReadings/elapsed.Seconds(), "readings/s")
	b.ReportMetric(benchReadings/published.Seconds(), "published/s")
	b.ReportMetric(float64(benchReadings-stored), "db_missing")
	b.ReportMetric(100*dbBusy, "db_cpu_%")
	reportIngestMetrics(b, s.metrics, elapsed)
}

// benchmarkBacklog stops the server, has the broker queue benchReadings
// readings for its persistent session, starts the server again and
// measures the rate from the first stored reading to the last.
func benchmarkBacklog(b *testing.B, s *benchStack) {
	conn := benchConn(b, s.db)
	pubs := connectPublishers(b, s.mqttURL)
	s.stop(b)
	if err := publishAll(pubs); err != nil {
		b.Fatalf("publish: %v", err)
	}
	s.start(b)
	// Poll from the start: the backlog flows as soon as the server has
	// subscribed, before /readyz says so.
	var first time.Time
	var atFirst, stored int
	var cpuBefore dbCPU
	deadline := time.Now().Add(benchStoreWait)
	for stored < benchReadings && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		stored = countAll(b, conn)
		if first.IsZero() && stored > 0 {
			first, atFirst = time.Now(), stored
			cpuBefore = readDBCPU(b, conn)
		}
	}
	elapsed := time.Since(first)
	dbBusy := readDBCPU(b, conn).since(cpuBefore).Seconds() / elapsed.Seconds()
	if stored < benchReadings {
		b.Fatalf("%d of %d readings stored after %v", stored, benchReadings, benchStoreWait)
	}
	s.waitReady(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(stored-atFirst)/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(benchReadings-stored), "db_missing")
	b.ReportMetric(100*dbBusy, "db_cpu_%")
	reportIngestMetrics(b, s.metrics, elapsed)
}

// connectPublishers connects benchPublishers MQTT clients.
func connectPublishers(b *testing.B, url string) []mqtt.Client {
	b.Helper()
	pubs := make([]mqtt.Client, benchPublishers)
	for p := range pubs {
		pubs[p] = benchPublisher(b, url, fmt.Sprintf("bench-tp-pub-%d", p))
	}
	return pubs
}

// publishAll sends benchReadings readings at QoS 1, an equal share from
// each client in parallel, without waiting between publishes, and returns
// once every PUBACK has arrived. Each reading has its own (sensor, ts):
// 25 sensors per client, 1 ms apart, an hour in the past.
func publishAll(pubs []mqtt.Client) error {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	per := benchReadings / len(pubs)
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for p, c := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]mqtt.Token, 0, per)
			for i := range per {
				toks = append(toks, c.Publish(fmt.Sprintf("sensors/tp-%d-%d/temperature", p, i%25), 1, false,
					fmt.Sprintf(`{"value":%d,"ts":%d}`, i, base.Add(time.Duration(i)*time.Millisecond).UnixMilli())))
			}
			errs[p] = waitTokens(toks, benchStoreWait)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dbCPU is the CPU time used so far by the PostgreSQL backends serving
// the benchmark's database (the server's pool), read from /proc, by pid.
// Background processes (WAL writer, checkpointer) are not included.
type dbCPU map[int]time.Duration

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTick = 10 * time.Millisecond

func readDBCPU(b *testing.B, conn *pgx.Conn) dbCPU {
	b.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		b.Fatalf("list backends: %v", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		b.Fatalf("list backends: %v", err)
	}
	out := dbCPU{}
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // ended meanwhile
		}
		// Fields after the parenthesised command name; utime and stime
		// are fields 14 and 15 of the whole line.
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(ut+st) * clockTick
	}
	return out
}

// since returns the CPU time used from before to now by the backends
// alive now (a backend that ended in between is missed).
func (now dbCPU) since(before dbCPU) time.Duration {
	var d time.Duration
	for pid, t := range now {
		d += t - before[pid]
	}
	return d
}

func benchConn(b *testing.B, dbURL string) *pgx.Conn {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func countAll(b *testing.B, conn *pgx.Conn) int {
	b.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM readings").Scan(&n); err != nil {
		b.Fatalf("count readings: %v", err)
	}
	return n
}

// waitStored polls until the database holds want readings or within
// passes, and returns the count.
func waitStored(b *testing.B, conn *pgx.Conn, want int, within time.Duration) int {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		n := countAll(b, conn)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reportIngestMetrics reports, from the server's /metrics, the mean batch
// size and commit time, commits per second of elapsed (counted since the
// server started, so a warm-up is included), and the events that explain
// a lost or duplicated reading: readings the store already had
// (redeliveries), lost MQTT connections and slow-consumer closes.
func reportIngestMetrics(b *testing.B, addr string, elapsed time.Duration) {
	b.Helper()
	vals := scrapeMetrics(b, addr)
	if n := vals["watchroom_ingest_batch_size_count"]; n > 0 {
		b.ReportMetric(vals["watchroom_ingest_batch_size_sum"]/n, "batch_avg")
	}
	if n := vals["watchroom_ingest_flush_seconds_count"]; n > 0 {
		b.ReportMetric(1000*vals["watchroom_ingest_flush_seconds_sum"]/n, "commit_avg_ms")
		b.ReportMetric(n/elapsed.Seconds(), "commits/s")
	}
	b.ReportMetric(vals["watchroom_readings_duplicate_total"], "redelivered")
	b.ReportMetric(vals["watchroom_mqtt_connection_lost_total"], "mqtt_drops")
	b.ReportMetric(vals[`watchroom_ws_disconnects_total{reason="slow_consumer"}`], "slow_closes")
}

// scrapeMetrics returns the watchroom_* samples of /metrics by series
// (name with labels); addr is the metrics listener's.
func scrapeMetrics(b testing.TB, addr string) map[string]float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || !strings.HasPrefix(line, "watchroom_") {
			continue
		}
		if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			vals[line[:i]] = f
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatalf("read /metrics: %v", err)
	}
	return vals
}

// sentFunc returns when a reading with this ts was published, whether it
// counts in the latency figures, and false if no such reading was sent.
// It is called from every client's reader goroutine.
type sentFunc func(ts time.Time) (sent time.Time, measured, ok bool)

// benchClient is a WebSocket client that records, for every reading, the
// time its frame arrived. Everything but distinct belongs to the reader
// goroutine until done is closed.
type benchClient struct {
	ws       *websocket.Conn
	done     chan struct{}
	distinct atomic.Int64 // distinct readings so far

	seen map[string]struct{} // sensor/metric@ts
	lat  []time.Duration
	dups int
	bad  int
}

// connectBenchClients dials and authenticates n clients, a few at a time,
// and starts their readers.
func connectBenchClients(b *testing.B, addr, token string, n int, sent sentFunc) []*benchClient {
	b.Helper()
	clients := make([]*benchClient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = dialBenchClient(addr, token, sent)
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				_ = c.ws.Close()
				<-c.done
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("connect %d clients: %v", n, err)
	}
	return clients
}

func dialBenchClient(addr, token string, sent sentFunc) (*benchClient, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","data":{"token":"`+token+`"}}`)); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("send auth: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, first, err := ws.ReadMessage()
	if err != nil || !bytes.HasPrefix(first, []byte(`{"type":"auth_ok"`)) {
		_ = ws.Close()
		return nil, fmt.Errorf("auth: got %q, err %v", first, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	c := &benchClient{ws: ws, done: make(chan struct{}), seen: map[string]struct{}{}}
	go c.read(sent)
	return c, nil
}

// benchReading is the part of a reading message the clients look at.
type benchReading struct {
	SensorID string `json:"sensor_id"`
	Metric   string `json:"metric"`
	TS       string `json:"ts"`
}

type benchMessage struct {
	Type string       `json:"type"`
	Data benchReading `json:"data"`
}

// read decodes every frame, unwrapping batches, until the connection
// ends. The arrival time is taken as soon as the frame is read, before
// decoding.
func (c *benchClient) read(sent sentFunc) {
	defer close(c.done)
	var batch []benchMessage
	for {
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		recv := time.Now()
		var f struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(frame, &f); err != nil {
			c.bad++
			continue
		}
		switch f.Type {
		case "reading":
			var r benchReading
			if err := json.Unmarshal(f.Data, &r); err != nil {
				c.bad++
				continue
			}
			c.record(r, recv, sent)
		case "batch":
			batch = batch[:0]
			if err := json.Unmarshal(f.Data, &batch); err != nil {
				c.bad++
				continue
			}
			for _, m := range batch {
				if m.Type == "reading" {
					c.record(m.Data, recv, sent)
				}
			}
		}
	}
}

func (c *benchClient) record(r benchReading, recv time.Time, sent sentFunc) {
	key := r.SensorID + "/" + r.Metric + "@" + r.TS
	if _, dup := c.seen[key]; dup {
		c.dups++
		return
	}
	c.seen[key] = struct{}{}
	c.distinct.Add(1)
	ts, err := time.Parse(time.RFC3339Nano, r.TS)
	if err != nil {
		c.bad++
		return
	}
	at, measured, ok := sent(ts)
	if !ok {
		c.bad++
		return
	}
	if measured {
		c.lat = append(c.lat, recv.Sub(at))
	}
}
