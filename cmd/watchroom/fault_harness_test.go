package main

// The harness of the fault suite (fault_*_test.go): the server as a child
// process (so that it can be killed with SIGKILL), a paced QoS 1 publisher
// that records which readings the broker acknowledged, WebSocket clients
// that record which readings they received, and the exact comparison of
// published, acknowledged, stored and delivered readings.
//
// Identity of a reading: every published reading carries a value that is
// unique across the test (its index). For readings with ts the key
// (sensor, metric, ts) follows from the index (sensorOf, tsOf) and the
// store check verifies it; ts-less readings are told apart by value, as
// their key is made by the server.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fasthttp/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// faultBinDir holds the watchroom binary built once per test binary run
// (see childBinary); TestMain removes it.
var (
	faultBinOnce sync.Once
	faultBinDir  string
	faultBin     string
	faultBinErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if faultBinDir != "" {
		os.RemoveAll(faultBinDir)
	}
	os.Exit(code)
}

// childBinary builds ./cmd/watchroom once. Without the race detector by
// default: the child is the system under load, and on two shared cores a
// race-instrumented server plus a race-instrumented test process cannot
// both keep 2,000 readings/s; WATCHROOM_FAULT_RACE=1 builds it with -race.
func childBinary(t testing.TB) string {
	t.Helper()
	faultBinOnce.Do(func() {
		faultBinDir, faultBinErr = os.MkdirTemp("", "watchroom-fault-bin-")
		if faultBinErr != nil {
			return
		}
		faultBin = filepath.Join(faultBinDir, "watchroom")
		args := []string{"build", "-o", faultBin}
		if os.Getenv("WATCHROOM_FAULT_RACE") == "1" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			faultBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatalf("build the server binary: %v", faultBinErr)
	}
	return faultBin
}

// child is `watchroom serve` as a child process, ended by its PID.
type child struct {
	t    testing.TB
	bin  string
	env  []string
	addr string
	log  string // path of the combined output of every start

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

const faultJWTSecret = "fault-suite-secret-0123456789abcdef0123"

// faultEnv is the child's configuration. COMMIT_TIMEOUT is read by ingest
// once the per-commit deadline has landed and ignored before.
func faultEnv(t testing.TB, dbURL, mqttURL string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"WATCHROOM_DATABASE_URL=" + dbURL,
		"WATCHROOM_MQTT_URL=" + mqttURL,
		fmt.Sprintf("WATCHROOM_HTTP_ADDR=127.0.0.1:%d", mqtttest.FreePort(t)),
		"WATCHROOM_MQTT_CLIENT_ID=watchroom-fault",
		"WATCHROOM_JWT_SECRET=" + faultJWTSecret,
		"WATCHROOM_COMMIT_TIMEOUT=2s",
		"WATCHROOM_LOG_LEVEL=info",
		fmt.Sprintf("WATCHROOM_METRICS_ADDR=127.0.0.1:%d", mqtttest.FreePort(t)),
		// One user holds every client of the suite (100 fast ones, 5,000
		// in the churn test): lift the per-user and per-address caps.
		"WATCHROOM_WS_MAX_PER_USER=100000",
		"WATCHROOM_WS_MAX_PER_ADDR=100000",
	}
	return append(env, extra...)
}

func startChild(t testing.TB, env []string) *child {
	t.Helper()
	c := &child{t: t, bin: childBinary(t), env: env, addr: lookupEnv(env, "WATCHROOM_HTTP_ADDR"),
		log: filepath.Join(t.TempDir(), "server.log")}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			b, _ := os.ReadFile(c.log)
			t.Logf("server log (tail):\n%s", tail(string(b), 6000))
		}
	})
	c.start()
	return c
}

// start runs the binary and waits until /readyz answers 200.
func (c *child) start() {
	c.t.Helper()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); f.Close() }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		resp, err := http.Get("http://" + c.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		c.t.Fatalf("server not ready within 30s")
	}
	select {
	case err := <-done:
		done <- err
		c.t.Fatalf("server exited during start: %v", err)
	default:
	}
}

// signal sends sig to the child's PID and waits up to within for it to
// exit; it returns how long that took.
func (c *child) signal(sig syscall.Signal, within time.Duration) time.Duration {
	c.t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return 0
	}
	start := time.Now()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		c.t.Errorf("server did not exit within %v of %v", within, sig)
	}
	return time.Since(start)
}

func (c *child) kill() { c.signal(syscall.SIGKILL, 10*time.Second) }

// term is SIGTERM; it returns the exit status too.
func (c *child) term(within time.Duration) (time.Duration, int) {
	c.t.Helper()
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	d := c.signal(syscall.SIGTERM, within)
	if cmd == nil || cmd.ProcessState == nil {
		return d, -1
	}
	return d, cmd.ProcessState.ExitCode()
}

// metrics scrapes /metrics into "name{labels}" → value.
func (c *child) metrics() map[string]float64 {
	c.t.Helper()
	resp, err := http.Get("http://" + lookupEnv(c.env, "WATCHROOM_METRICS_ADDR") + "/metrics")
	if err != nil {
		c.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// metricSum adds every series whose name is name and whose labels contain
// each of labels (e.g. `reason="slow_consumer"`).
func metricSum(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		n, l, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, want := range labels {
			ok = ok && strings.Contains(l, want)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

func (c *child) logText() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// waitUntil polls cond every step until it holds or within has passed.
func waitUntil(within, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}

// --- load ------------------------------------------------------------------

const (
	loadSensors = 20
	loadRate    = 2000 // readings per second, the minimum
)

// loadGen publishes readings with ts at a fixed rate over one QoS 1
// connection with a persistent session, so that a broker restart resends
// what was in flight. Reading i goes to sensors/{sensorOf(i)}/v with value
// i and ts tsOf(i): the publish time in milliseconds, made strictly
// increasing per sensor so that a key never repeats. A ts near the clock
// matters for resume, which replays by ts (and refuses an old since).
type loadGen struct {
	t      *testing.T
	client mqtt.Client
	rate   int

	published atomic.Int64
	ackedN    atomic.Int64
	failed    atomic.Int64 // tokens that ended with an error or timed out
	firstErr  atomic.Value // string: the first token error

	mu    sync.Mutex
	acked []bool
	tsMs  []int64 // ts of reading i, Unix milliseconds

	pending chan pendingPub
	stop    chan struct{}
	stopped chan struct{}
	waited  chan struct{}
	started time.Time
	ended   time.Time
}

type pendingPub struct {
	i   int
	tok mqtt.Token
}

var loadSensorNames = func() (n [loadSensors]string) {
	for i := range n {
		n[i] = fmt.Sprintf("f-%02d", i)
	}
	return n
}()

func sensorOf(i int) string { return loadSensorNames[i%loadSensors] }

// tsOf is the ts reading i was published with.
func (g *loadGen) tsOf(i int) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.UnixMilli(g.tsMs[i]).UTC()
}

func newLoad(t *testing.T, brokerURL string) *loadGen {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("fault-load-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("load publisher connect: %v", tok.Error())
	}
	g := &loadGen{t: t, client: c, rate: loadRate,
		pending: make(chan pendingPub, 1<<20), stop: make(chan struct{}), stopped: make(chan struct{}), waited: make(chan struct{})}
	t.Cleanup(func() { g.finish(0); c.Disconnect(100) })
	return g
}

// run publishes at g.rate until finish. Publishing is paced against the
// clock (catching up after a stall), in slices of 5 ms.
func (g *loadGen) run() {
	go g.waitAcks()
	g.started = time.Now()
	go func() {
		defer close(g.stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		i := 0
		var last [loadSensors]int64
		for {
			select {
			case <-g.stop:
				g.ended = time.Now()
				close(g.pending)
				return
			case <-tick.C:
			}
			due := int(time.Since(g.started).Seconds() * float64(g.rate))
			for ; i < due; i++ {
				ms := max(time.Now().UnixMilli(), last[i%loadSensors]+1)
				last[i%loadSensors] = ms
				g.mu.Lock()
				g.tsMs = append(g.tsMs, ms)
				g.mu.Unlock()
				ts := time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
				tok := g.client.Publish("sensors/"+sensorOf(i)+"/v", 1, false, `{"value":`+strconv.Itoa(i)+`,"ts":"`+ts+`"}`)
				g.published.Add(1)
				g.pending <- pendingPub{i, tok}
			}
		}
	}()
}

// waitAcks waits for each publish's PUBACK in order.
func (g *loadGen) waitAcks() {
	defer close(g.waited)
	for p := range g.pending {
		ok := p.tok.WaitTimeout(60*time.Second) && p.tok.Error() == nil
		g.mu.Lock()
		for len(g.acked) <= p.i {
			g.acked = append(g.acked, false)
		}
		g.acked[p.i] = ok
		g.mu.Unlock()
		if ok {
			g.ackedN.Add(1)
		} else {
			g.failed.Add(1)
			g.firstErr.CompareAndSwap(nil, fmt.Sprintf("value %d: %v", p.i, p.tok.Error()))
		}
	}
}

// finish stops publishing and waits up to within for the outstanding
// PUBACKs. It is safe to call more than once.
func (g *loadGen) finish(within time.Duration) {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	if g.started.IsZero() {
		return
	}
	<-g.stopped
	select {
	case <-g.waited:
	case <-time.After(within):
	}
}

// achievedRate is readings per second over the publishing time.
func (g *loadGen) achievedRate() float64 {
	end := g.ended
	if end.IsZero() {
		end = time.Now()
	}
	return float64(g.published.Load()) / end.Sub(g.started).Seconds()
}

func (g *loadGen) ackedSet() []bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bool(nil), g.acked...)
}

// --- store -----------------------------------------------------------------

// storedLoad reads every stored load reading. counts[i] is how many rows
// carry value i; wrongKey counts rows whose sensor or ts is not the one
// reading i was published with.
func storedLoad(t *testing.T, dbURL string, g *loadGen) (counts []int, rows, wrongKey int) {
	t.Helper()
	conn, ctx, done := faultDBConn(t, dbURL, 30*time.Second)
	defer done()
	r, err := conn.Query(ctx, `SELECT sensor_id, ts, value FROM readings WHERE sensor_id LIKE 'f-%'`)
	if err != nil {
		t.Fatalf("read readings: %v", err)
	}
	defer r.Close()
	counts = make([]int, g.published.Load())
	for r.Next() {
		var sensor string
		var ts time.Time
		var v float64
		if err := r.Scan(&sensor, &ts, &v); err != nil {
			t.Fatalf("scan: %v", err)
		}
		rows++
		i := int(v)
		if i < 0 || i >= len(counts) || float64(i) != v {
			wrongKey++
			continue
		}
		counts[i]++
		if sensor != sensorOf(i) || !ts.Equal(g.tsOf(i)) {
			wrongKey++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("read readings: %v", err)
	}
	return counts, rows, wrongKey
}

// faultDBConn connects directly to the test database (never through a fault
// proxy) for queries that must end within d; the connection is closed
// when the test ends or when d has passed.
// faultDBConn connects to the test database for at most d; the caller
// closes it with done as soon as it is through (the helpers run in polling
// loops: a connection kept until the test ends per poll exhausts
// PostgreSQL's connections).
func faultDBConn(t *testing.T, dbURL string, d time.Duration) (conn *pgx.Conn, ctx context.Context, done func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		cancel()
		t.Fatalf("connect: %v", err)
	}
	return conn, ctx, func() { conn.Close(context.Background()); cancel() }
}

// countLike counts readings of sensors matching a LIKE pattern.
func countLike(t *testing.T, dbURL, pattern string) int {
	t.Helper()
	conn, ctx, done := faultDBConn(t, dbURL, 10*time.Second)
	defer done()
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM readings WHERE sensor_id LIKE $1", pattern).Scan(&n); err != nil {
		t.Fatalf("count readings: %v", err)
	}
	return n
}

// --- WebSocket clients -----------------------------------------------------

// tracker is a /ws client that records every reading it receives, by
// value. It scans frames by hand (no encoding/json on the hot path): with
// 100 clients at 2,000 readings/s the test process decodes 200,000
// readings a second, under the race detector.
//
// With reconnect set it dials again when the connection ends (until
// stopped), authenticates and sends resume with the ts of the newest
// reading it has seen.
type tracker struct {
	name      string
	addr      string
	token     string
	reconnect bool
	delay     time.Duration // sleep after each frame: a slow consumer
	stall     bool          // stop reading after auth: a stalled consumer
	rcvBuf    int           // SO_RCVBUF of the socket when > 0

	mu          sync.Mutex
	counts      []uint8          // load readings by value
	extra       map[string]uint8 // other readings (ts-less), by sensor/value
	dups        int              // a reading received again outside a resume hand-over
	overlap     int              // repeats inside a resume hand-over (documented as possible)
	wrongKey    int              // a load reading on another sensor than published
	lastT       time.Time        // lastTS parsed
	lastTS      string           // ts of the newest reading seen
	types       map[string]int   // messages by type, readings included
	closes      []int            // close code of every connection end
	firstDup    string           // the first reading received twice
	distinct    int              // distinct readings received
	resumes     int              // resume requests sent
	sinces      []string         // the since of each resume
	resumed     int              // resumed answers
	resumeFails []string         // resume_failed / error answers, raw
	inResume    bool             // between auth_ok of a reconnect and resumed
	lastSeq     int64            // the highest commit batch seen
	resumeSeq   int64            // the batch the resume in progress starts from
	gaps        int              // gap messages
	thinned     int              // readings the gap messages say were thinned
	connects    int              // connections authenticated
	firstErr    string           // first unexpected failure
	closedAt    time.Time        // when the last connection ended
	servers     []string         // per connection, the X-Watchroom-Server a load balancer named
	seqBack     int              // readings with a lower seq than one seen before

	conn     atomic.Pointer[websocket.Conn]
	stopped  atomic.Bool
	released atomic.Bool // a stalled client reads again
	ended    chan struct{}
}

func newTracker(name, addr, token string) *tracker {
	return &tracker{name: name, addr: addr, token: token, extra: map[string]uint8{}, types: map[string]int{}, ended: make(chan struct{})}
}

// start dials and authenticates; it fails the test when that does not
// work within 10s.
func (k *tracker) start(t *testing.T) {
	t.Helper()
	if err := k.dial(10 * time.Second); err != nil {
		t.Fatalf("%s: %v", k.name, err)
	}
	t.Cleanup(k.stop)
	go k.loop()
}

func (k *tracker) dial(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) && !k.stopped.Load() {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		if k.rcvBuf > 0 {
			// A small receive buffer, set before connecting so the window
			// stays small: otherwise loopback socket buffers hold tens of
			// thousands of readings and a slow reader falls behind for a
			// minute before the server's queue notices.
			nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				_ = rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, k.rcvBuf)
				})
				return serr
			}}
			d.NetDial = nd.Dial
		}
		conn, resp, err := d.Dial("ws://"+k.addr+"/ws", nil)
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		server := resp.Header.Get("X-Watchroom-Server") // set by the cluster tests' haproxy
		// A client that will resume says so in its auth, so that no live
		// reading reaches it before the replay (docs/protocol.md).
		k.mu.Lock()
		willResume := k.connects > 0 && k.lastTS != ""
		k.mu.Unlock()
		b, _ := json.Marshal(map[string]any{"type": "auth", "data": map[string]any{"token": k.token, "resume": willResume}})
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			conn.Close()
			last = err
			continue
		}
		_, msg, err := conn.ReadMessage()
		if err != nil || !bytes.Contains(msg, []byte(`"auth_ok"`)) {
			conn.Close()
			last = fmt.Errorf("auth: %v %s", err, msg)
			continue
		}
		conn.SetReadDeadline(time.Time{})
		k.mu.Lock()
		k.connects++
		k.servers = append(k.servers, server)
		since := k.lastTS
		resume := k.connects > 1 && since != ""
		if resume {
			k.inResume = true
			k.resumes++
			k.sinces = append(k.sinces, since)
			k.resumeSeq = k.lastSeq
		}
		cursor := map[string]any{"since": since}
		if k.resumeSeq > 0 {
			cursor["seq"] = k.resumeSeq // exact: by commit order
		}
		id := "resume-" + strconv.Itoa(k.resumes)
		k.mu.Unlock()
		if resume {
			req, _ := json.Marshal(map[string]any{"type": "resume", "id": id, "data": map[string]any{"readings": cursor}})
			if err := conn.WriteMessage(websocket.TextMessage, req); err != nil {
				conn.Close()
				last = err
				continue
			}
		}
		k.conn.Store(conn)
		return nil
	}
	if last == nil {
		last = fmt.Errorf("stopped")
	}
	return fmt.Errorf("dial /ws within %v: %w", within, last)
}

func (k *tracker) loop() {
	defer close(k.ended)
	for {
		conn := k.conn.Load()
		if k.stall {
			// Read nothing: the server's writes pile up in the socket
			// buffers until its write deadline or queue ends it. The
			// close is noticed when we finally read.
			for !k.released.Load() && !k.stopped.Load() {
				time.Sleep(20 * time.Millisecond)
			}
		}
		var buf bytes.Buffer
		for {
			_, r, err := conn.NextReader()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(r)
			}
			if err != nil {
				code := websocket.CloseAbnormalClosure
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				k.mu.Lock()
				k.closes = append(k.closes, code)
				k.closedAt = time.Now()
				k.mu.Unlock()
				break
			}
			k.frame(buf.Bytes())
			if k.delay > 0 {
				time.Sleep(k.delay)
			}
		}
		conn.Close()
		if !k.reconnect || k.stopped.Load() {
			return
		}
		if err := k.dial(60 * time.Second); err != nil {
			k.fail(err.Error())
			return
		}
	}
}

// stop ends the client; it returns once its reader has.
func (k *tracker) stop() {
	k.stopped.Store(true)
	if c := k.conn.Load(); c != nil {
		c.Close()
	}
	<-k.ended
}

func (k *tracker) fail(s string) {
	k.mu.Lock()
	if k.firstErr == "" {
		k.firstErr = s
	}
	k.mu.Unlock()
}

var (
	typePrefix  = []byte(`{"type":"`)
	readingType = []byte(`reading"`)
	batchType   = []byte(`batch"`)
)

// frame records one frame. Frames of readings (alone or batched) are
// scanned by hand; any other message makes the whole frame go through
// encoding/json (rare: replies, gap, resumed).
func (k *tracker) frame(b []byte) {
	if !bytes.HasPrefix(b, typePrefix) {
		k.mu.Lock()
		k.types["raw"]++
		k.mu.Unlock()
		return
	}
	// Pass 1: is every message a reading?
	only := true
	for rest := b; ; {
		i := bytes.Index(rest, typePrefix)
		if i < 0 {
			break
		}
		rest = rest[i+len(typePrefix):]
		if !bytes.HasPrefix(rest, readingType) && !bytes.HasPrefix(rest, batchType) {
			only = false
			break
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !only {
		k.slowFrameLocked(b)
		return
	}
	for rest := b; ; {
		i := bytes.Index(rest, typePrefix)
		if i < 0 {
			return
		}
		rest = rest[i+len(typePrefix):]
		if !bytes.HasPrefix(rest, readingType) {
			continue
		}
		end := bytes.Index(rest, typePrefix)
		msg := rest
		if end >= 0 {
			msg = rest[:end]
		}
		sensor := field(msg, `"sensor_id":"`, '"')
		value := field(msg, `"value":`, ',')
		var ts []byte
		var seq int64
		if k.reconnect {
			ts = field(msg, `"ts":"`, '"')
			seq, _ = strconv.ParseInt(string(field(msg, `"seq":`, '}')), 10, 64)
		}
		if i, ok := smallInt(value); ok && bytes.HasPrefix(sensor, []byte("f-")) {
			k.loadReadingLocked(sensor, i, ts, seq)
			continue
		}
		k.readingLocked(string(sensor), string(value), string(ts), seq)
	}
}

// smallInt parses a non-negative decimal integer below 1<<24.
func smallInt(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n < 1<<24
}

// loadReadingLocked is readingLocked for a load reading, without
// allocating. Must be called with k.mu held.
func (k *tracker) loadReadingLocked(sensor []byte, i int, ts []byte, seq int64) {
	k.types["reading"]++
	k.seenTSLocked(ts)
	k.seqOrderLocked(seq)
	if string(sensor) != sensorOf(i) {
		k.wrongKey++
	}
	for len(k.counts) <= i {
		k.counts = append(k.counts, make([]uint8, 4096)...)
	}
	seen := k.counts[i]
	if seen < 255 {
		k.counts[i]++
	}
	k.countLocked(seen, seq, func() string { return fmt.Sprintf("%s value %d ts %s seq %d", sensor, i, ts, seq) })
}

// seqOrderLocked keeps the highest commit batch seen and counts a reading
// of an earlier batch: readings reach a client in seq order, replays
// included (a resume starts from the batch the client names, its own
// highest). Must be called with k.mu held.
func (k *tracker) seqOrderLocked(seq int64) {
	if seq != 0 && seq < k.lastSeq {
		k.seqBack++
	}
	k.lastSeq = max(k.lastSeq, seq)
}

// seenTSLocked keeps the newest ts seen, the since of the next resume.
// Compared as instants: the text does not sort when fraction lengths
// differ (".775Z" against ".7751Z"). Must be called with k.mu held.
func (k *tracker) seenTSLocked(ts []byte) {
	if len(ts) == 0 {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err == nil && t.After(k.lastT) {
		k.lastT, k.lastTS = t, string(ts)
	}
}

// countLocked counts a reading of commit batch seq that had been received
// seen times before. The one repeat the protocol allows is a replayed
// reading of the batch the resume names (the client may have seen only part
// of it): that is an overlap; any other repeat is a duplicate. Must be
// called with k.mu held.
func (k *tracker) countLocked(seen uint8, seq int64, describe func() string) {
	if seen == 0 {
		k.distinct++
		return
	}
	if k.inResume && seq != 0 && seq == k.resumeSeq {
		k.overlap++
		return
	}
	k.dups++
	if k.firstDup == "" {
		k.firstDup = fmt.Sprintf("%s, after %d resumed", describe(), k.resumed)
	}
}

// field returns the bytes after key up to the first stop byte (or '}').
func field(msg []byte, key string, stop byte) []byte {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return nil
	}
	v := msg[i+len(key):]
	for j, c := range v {
		if c == stop || c == '}' {
			return v[:j]
		}
	}
	return v
}

// readingLocked records one reading. Must be called with k.mu held.
func (k *tracker) readingLocked(sensor, value, ts string, seq int64) {
	k.types["reading"]++
	k.seenTSLocked([]byte(ts))
	k.seqOrderLocked(seq)
	v, err := strconv.ParseFloat(value, 64)
	i := int(v)
	var seen uint8
	if strings.HasPrefix(sensor, "f-") && err == nil && float64(i) == v && i >= 0 && i < 1<<24 {
		if sensor != sensorOf(i) {
			k.wrongKey++
		}
		for len(k.counts) <= i {
			k.counts = append(k.counts, make([]uint8, 4096)...)
		}
		seen = k.counts[i]
		if seen < 255 {
			k.counts[i]++
		}
	} else {
		key := sensor + "/" + value
		seen = k.extra[key]
		if seen < 255 {
			k.extra[key]++
		}
	}
	k.countLocked(seen, seq, func() string { return fmt.Sprintf("%s value %s ts %s seq %d", sensor, value, ts, seq) })
}

// slowFrameLocked decodes a frame with encoding/json. Must be called with
// k.mu held.
func (k *tracker) slowFrameLocked(b []byte) {
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		k.types["bad_json"]++
		return
	}
	msgs := []wsMsg{m}
	if m.Type == "batch" {
		msgs = nil
		if err := json.Unmarshal(m.Data, &msgs); err != nil {
			k.types["bad_batch"]++
			return
		}
	}
	for _, m := range msgs {
		switch m.Type {
		case "reading":
			var r struct {
				SensorID string          `json:"sensor_id"`
				Value    json.RawMessage `json:"value"`
				TS       string          `json:"ts"`
				Seq      int64           `json:"seq"`
			}
			_ = json.Unmarshal(m.Data, &r)
			k.readingLocked(r.SensorID, string(r.Value), r.TS, r.Seq)
			continue
		case "gap":
			var g struct {
				Thinned int `json:"thinned"`
			}
			_ = json.Unmarshal(m.Data, &g)
			k.gaps++
			k.thinned += g.Thinned
		case "resumed":
			k.resumed++
			k.inResume = false
		case "resume_failed":
			k.resumeFails = append(k.resumeFails, string(m.Data))
			k.inResume = false
		case "error":
			if bytes.HasPrefix(m.Ref, []byte(`"resume-`)) {
				k.resumeFails = append(k.resumeFails, string(m.Data))
				k.inResume = false
			}
		}
		k.types[m.Type]++
	}
}

// received is how many distinct readings the client has.
func (k *tracker) received() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.distinct
}

// --- verdict ---------------------------------------------------------------

// faultFigures is what one fault test measured; it is logged in one line
// (grep FIGURES) and copied into docs/reliability.md.
type faultFigures struct {
	Published, Acked, AckFailed, Stored, MissingAcked, Duplicated, Stray, WrongKey int
	Rate                                                                           float64
	Clients                                                                        int
	ClientsComplete                                                                int
	ClientMissing, ClientDups, ClientPhantom, ClientOverlap                        int
}

// verifyLoad compares what was published, acknowledged, stored and
// delivered: verifyStore, then verifyClients against what is stored.
func verifyLoad(t *testing.T, dbURL string, g *loadGen, complete []*tracker) faultFigures {
	t.Helper()
	counts, f := verifyStore(t, dbURL, g, true)
	verifyClients(t, g, counts, complete, &f)
	return f
}

// verifyStore checks that every acknowledged reading is stored (when
// allAcked is set: the broker may still hold some while no server runs),
// each exactly once under the key it was published with, and that nothing
// unpublished is stored. counts[i] is how many rows hold reading i.
func verifyStore(t *testing.T, dbURL string, g *loadGen, allAcked bool) ([]int, faultFigures) {
	t.Helper()
	acked := g.ackedSet()
	counts, rows, wrongKey := storedLoad(t, dbURL, g)
	f := faultFigures{Published: int(g.published.Load()), Acked: int(g.ackedN.Load()), AckFailed: int(g.failed.Load()),
		Stored: rows, WrongKey: wrongKey, Rate: g.achievedRate()}
	var firstMissing = -1
	for i, c := range counts {
		if c > 1 {
			f.Duplicated += c - 1
		}
		if i < len(acked) && acked[i] && c == 0 {
			f.MissingAcked++
			if firstMissing < 0 {
				firstMissing = i
			}
		}
	}
	f.Stray = rows - wrongKey - sum(counts) // rows that matched no published index
	if f.MissingAcked > 0 && allAcked {
		t.Errorf("%d readings acknowledged by the broker were not stored (first: value %d)", f.MissingAcked, firstMissing)
	}
	if f.Duplicated > 0 || f.WrongKey > 0 || f.Stray > 0 {
		t.Errorf("store: %d duplicated, %d with the wrong key, %d not published", f.Duplicated, f.WrongKey, f.Stray)
	}
	return counts, f
}

// verifyClients checks that each client received every reading in counts
// (count > 0) exactly once, and nothing else of the load.
func verifyClients(t *testing.T, g *loadGen, counts []int, ks []*tracker, f *faultFigures) {
	t.Helper()
	f.Clients += len(ks)
	for _, k := range ks {
		k.mu.Lock()
		missing, phantom := 0, 0
		var firstMissing []string
		for i, c := range counts {
			got := 0
			if i < len(k.counts) {
				got = int(k.counts[i])
			}
			if c > 0 && got == 0 {
				missing++
				if len(firstMissing) < 5 {
					firstMissing = append(firstMissing, fmt.Sprintf("%d@%s", i, g.tsOf(i).Format(time.RFC3339Nano)))
				}
			}
			if c == 0 && got > 0 {
				phantom++
			}
		}
		for i := len(counts); i < len(k.counts); i++ {
			if k.counts[i] > 0 {
				phantom++
			}
		}
		f.ClientMissing += missing
		f.ClientPhantom += phantom
		f.ClientDups += k.dups
		f.ClientOverlap += k.overlap
		if missing == 0 && phantom == 0 && k.dups == 0 && k.wrongKey == 0 {
			f.ClientsComplete++
		} else {
			t.Errorf("client %s: %d stored readings not received (first: %v), %d received but not stored, %d received twice (first: %s), %d on the wrong sensor; closes %v, resumes %d sent / %d answered (since %v), resume failures %v, first error %q",
				k.name, missing, firstMissing, phantom, k.dups, k.firstDup, k.wrongKey, k.closes, k.resumes, k.resumed, k.sinces, k.resumeFails, k.firstErr)
		}
		k.mu.Unlock()
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func (f faultFigures) log(t *testing.T, name string, extra string) {
	t.Helper()
	t.Logf("FIGURES %s: published=%d acked=%d ack_failed=%d stored=%d missing_acked=%d duplicated=%d stray=%d wrong_key=%d rate=%.0f/s clients=%d complete=%d client_missing=%d client_dups=%d client_phantom=%d client_resume_overlap=%d %s",
		name, f.Published, f.Acked, f.AckFailed, f.Stored, f.MissingAcked, f.Duplicated, f.Stray, f.WrongKey, f.Rate,
		f.Clients, f.ClientsComplete, f.ClientMissing, f.ClientDups, f.ClientPhantom, f.ClientOverlap, extra)
}

// faultSetup is the common start of a fault test: a database, a private
// Mosquitto, users, and the child server (dbURL may be a proxy's).
type faultRig struct {
	db     string // direct URL, for the test's own queries
	broker *mqtttest.Broker
	srv    *child
	token  string
}

func newFaultRig(t *testing.T, serverDB func(direct string) string, extra ...string) *faultRig {
	t.Helper()
	r := &faultRig{db: newDB(t), broker: mqtttest.Start(t)}
	addUser(t, r.db, "alice", "operator", "alice-password")
	dbURL := r.db
	if serverDB != nil {
		dbURL = serverDB(r.db)
	}
	r.srv = startChild(t, faultEnv(t, dbURL, r.broker.URL(), extra...))
	r.token = login(t, r.srv.addr, "alice", "alice-password")
	return r
}

// trackers starts n clients.
func (r *faultRig) trackers(t *testing.T, prefix string, n int, reconnect bool) []*tracker {
	t.Helper()
	ks := make([]*tracker, n)
	for i := range ks {
		ks[i] = newTracker(fmt.Sprintf("%s-%d", prefix, i), r.srv.addr, r.token)
		ks[i].reconnect = reconnect
		ks[i].start(t)
	}
	return ks
}

// settle waits, bounded, for the end state: every PUBACK in, every
// published reading stored (or within the bound), each client holding
// every stored reading. It returns how long the store took to catch up.
func settle(t *testing.T, r *faultRig, g *loadGen, ks []*tracker, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	g.finish(within)
	want := int(g.published.Load())
	waitUntil(within, 100*time.Millisecond, func() bool { return countLike(t, r.db, "f-%") >= want })
	stored := time.Since(start)
	n := countLike(t, r.db, "f-%")
	waitUntil(within, 100*time.Millisecond, func() bool {
		for _, k := range ks {
			if k.received() < n {
				return false
			}
		}
		return true
	})
	return stored
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func itoa(i int) string { return strconv.Itoa(i) }

// steadyLoad starts the load and returns once a second's worth of it is
// stored (bounded), so that the fault hits a running pipeline.
func (r *faultRig) steadyLoad(t *testing.T) *loadGen {
	t.Helper()
	g := newLoad(t, r.broker.URL())
	g.run()
	if !waitUntil(20*time.Second, 50*time.Millisecond, func() bool { return countLike(t, r.db, "f-%") >= loadRate }) {
		t.Fatalf("no steady ingest within 20s: %d readings stored", countLike(t, r.db, "f-%"))
	}
	return g
}
