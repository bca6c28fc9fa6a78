package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
)

// Benchmarks of the fan-out path; docs/benchmarks.md has the figures. Run
// with
//
//	go test -run '^$' -bench . -benchmem ./internal/hub
//
// Figures are reported, never asserted.

// BenchmarkEncodeReading is the per-reading cost PublishReadings pays once
// per broadcast, whatever the number of clients.
func BenchmarkEncodeReading(b *testing.B) {
	r := reading("s-17", 23.5)
	b.SetBytes(int64(len(encodeReading(r))))
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeReading(r)
	}
}

// Fan-out benchmark parameters.
const (
	// benchWindow bounds, in PublishReadings calls, how far the publisher
	// may run ahead of the slowest client. Ingest is paced by database
	// commits; an unpaced loop would only measure how fast send queues
	// overflow (each call is one of the SendQueue's 256 items). Once the
	// window is full the publisher waits until the slowest client is
	// within half of it: waking up costs up to a millisecond (a short
	// sleep rounds up to the poller's 1 ms), so each wake-up must hand
	// over many batches, not one.
	benchWindow = 64
	// benchWait bounds every wait for deliveries.
	benchWait = 30 * time.Second
)

// BenchmarkPublishReadings measures the fan-out of committed batches of
// readings to N authenticated WebSocket clients over real loopback TCP
// (Fiber, gofiber/contrib/websocket, fasthttp/websocket client). One op is
// one reading, delivered to every client: ns/op runs from the first publish
// to the moment the last client has read the last reading, so it includes
// the final drain. Clients run in the same process, on the same two cores:
// each reads every frame whole and unwraps batch frames by scanning for
// their messages (no JSON decoding), which keeps their share of the CPU
// small; the figures are therefore the server's cost plus that minimum.
//
// batch is the readings per PublishReadings call, i.e. per ingest commit:
// about 10 at 1,000 readings/s with a 10 ms flush, 100 and more under
// heavier load. The publisher is never slowed by clients beyond the
// window below, so the figures are ceilings, with frames as full as
// MaxBatch allows.
func BenchmarkPublishReadings(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, size := range []int{10, 100} {
			b.Run(fmt.Sprintf("clients=%d/batch=%d", n, size), func(b *testing.B) {
				benchmarkPublishReadings(b, n, size)
			})
		}
	}
}

// benchmarkPublishReadings publishes batches of size readings to n clients
// for as long as b.Loop asks, then waits for every client to have them all.
func benchmarkPublishReadings(b *testing.B, n, size int) {
	env := newBenchEnv(b, n)
	sensors := make([]string, 100)
	for i := range sensors {
		sensors[i] = fmt.Sprintf("s-%d", i+1)
	}
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	batch := make([]model.Reading, 0, size)
	window := int64(benchWindow * size)
	var published int64
	var floor int64 // every client has at least this many readings
	publish := func() {
		// Keep the slowest client at most benchWindow calls behind, then
		// hand the batch over as ingest does after a commit.
		if published-floor >= window {
			floor = published - window/2
			env.waitAll(b, floor)
		}
		env.hub.PublishReadings(batch)
		published += int64(len(batch))
		// PublishReadings keeps its encoded copies, not the slice.
		batch = batch[:0]
	}

	b.ReportAllocs()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		batch = append(batch, model.Reading{
			SensorID: sensors[i%len(sensors)], Metric: "temperature", Unit: "°C",
			Value: float64(i % 1000), TS: base.Add(time.Duration(i) * time.Millisecond),
		})
		if len(batch) == size {
			publish()
		}
	}
	if len(batch) > 0 {
		publish()
	}
	env.waitAll(b, published)
	elapsed := time.Since(start)

	var frames int64
	for _, c := range env.clients {
		frames += c.frames.Load()
	}
	delivered := published * int64(n)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(published), "ns/op")
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(delivered)/float64(max(frames, 1)), "msgs/frame")
	b.ReportMetric(env.slowCloses(b), "slow_closes")
}

// benchEnv is a hub behind a real Fiber server on a free loopback port,
// with its clients connected and authenticated.
type benchEnv struct {
	hub     *Hub
	reg     *prometheus.Registry
	clients []*benchClient
}

// benchClient counts the readings it receives; its reader goroutine is
// the only one touching ws after the handshake.
type benchClient struct {
	ws       *fws.Conn
	readings atomic.Int64
	frames   atomic.Int64
	done     chan struct{} // closed when the reader ends
}

func newBenchEnv(b *testing.B, clients int) *benchEnv {
	b.Helper()
	tokens, err := auth.NewTokens(testSecret, time.Hour, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{reg: prometheus.NewRegistry()}
	env.hub = New(Config{}, &tokenAuth{Tokens: tokens}, newFakeStore(), env.reg, slog.New(slog.DiscardHandler))

	ctx, cancel := context.WithCancel(context.Background())
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws", websocket.New(func(c *websocket.Conn) {
		env.hub.Serve(ctx, c.Conn, ServeOptions{})
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), benchWait)
		defer scancel()
		if err := env.hub.Shutdown(sctx); err != nil {
			b.Errorf("cleanup: %v", err)
		}
		for _, c := range env.clients {
			_ = c.ws.Close()
			<-c.done
		}
		cancel()
		_ = app.ShutdownWithTimeout(benchWait)
		_ = ln.Close()
		<-served
	})

	token, _, err := tokens.Issue("bench", model.RoleViewer)
	if err != nil {
		b.Fatal(err)
	}
	// Dial in parallel, a few at a time: 1,000 sequential handshakes would
	// take longer than the benchmark.
	env.clients = make([]*benchClient, clients)
	errs := make([]error, clients)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range env.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			env.clients[i], errs[i] = dialBench(ln.Addr().String(), token)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range env.clients {
			if c != nil {
				_ = c.ws.Close()
				<-c.done
			}
		}
		env.clients = nil
		b.Fatalf("connect %d clients: %v", clients, err)
	}
	return env
}

// dialBench connects and authenticates one client and starts its reader.
func dialBench(addr, token string) (*benchClient, error) {
	d := *fws.DefaultDialer
	d.HandshakeTimeout = benchWait
	ws, _, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = ws.SetWriteDeadline(time.Now().Add(benchWait))
	if err := ws.WriteMessage(fws.TextMessage, []byte(`{"type":"auth","data":{"token":"`+token+`"}}`)); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("send auth: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(benchWait))
	_, first, err := ws.ReadMessage()
	if err != nil || !bytes.HasPrefix(first, []byte(`{"type":"auth_ok"`)) {
		_ = ws.Close()
		return nil, fmt.Errorf("auth: got %q, err %v", first, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	c := &benchClient{ws: ws, done: make(chan struct{})}
	go c.read()
	return c, nil
}

var (
	benchReadingHead = []byte(`{"type":"reading"`)
	benchBatchHead   = []byte(`{"type":"batch","data":[`)
)

// read counts the readings of every frame until the connection ends. A
// batch frame is unwrapped by counting the reading messages it holds: the
// server writes each message as {"type":"reading",...}, and no reading
// can contain that text inside a string (JSON escapes its quotes).
func (c *benchClient) read() {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		frame := buf.Bytes()
		var n int
		switch {
		case bytes.HasPrefix(frame, benchBatchHead):
			n = bytes.Count(frame, benchReadingHead)
		case bytes.HasPrefix(frame, benchReadingHead):
			n = 1
		}
		c.frames.Add(1)
		c.readings.Add(int64(n))
	}
}

// waitAll waits until every client has received at least want readings.
func (e *benchEnv) waitAll(b *testing.B, want int64) {
	if want <= 0 {
		return
	}
	deadline := time.Now().Add(benchWait)
	for _, c := range e.clients {
		for c.readings.Load() < want {
			select {
			case <-c.done:
				b.Fatalf("a client's connection ended after %d of %d readings (slow-consumer closes: %g)",
					c.readings.Load(), want, e.slowCloses(b))
			default:
			}
			if time.Now().After(deadline) {
				b.Fatalf("a client has %d of %d readings after %v", c.readings.Load(), want, benchWait)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// slowCloses reads watchroom_ws_disconnects_total{reason="slow_consumer"}.
func (e *benchEnv) slowCloses(b *testing.B) float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "watchroom_ws_disconnects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reasonSlowConsumer {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
