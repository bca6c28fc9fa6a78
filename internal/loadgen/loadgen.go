// Package loadgen is the load generator behind `watchroom bench`: it
// drives a running server from outside, over real loopback sockets, the
// way production does. MQTT publishers send readings with unique
// timestamps through the broker at a fixed total rate, WebSocket clients
// (github.com/coder/websocket, a client library independent of the
// server's) decode every frame, chat senders post in one room, idle
// connections sit authenticated. It measures what the outside sees
// (publish → receive per reading and client, send → receive per chat
// message and member, readings stored) and what the server reports on its
// metrics listener (CPU seconds, RSS, goroutines), and in the same run two
// ceilings: the same publishers into a bare paho subscriber (the broker
// alone) and CopyFrom of the same rows from a bare program (the database
// alone).
//
// Every loop is bounded in count and in time; Config.Drain bounds the
// waits for stragglers. Nothing here asserts a figure: Run reports.
//
// Run is called by one goroutine; everything else is internal.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Config is one run. Zero counts switch a part off.
type Config struct {
	HTTPAddr    string // the server's public listener, host:port
	MetricsAddr string // its metrics listener (WATCHROOM_METRICS_ADDR), or several comma-separated (a cluster's instances: figures are their sums); empty: no server figures
	MQTTURL     string // the broker the server subscribes to
	DatabaseURL string // optional: readings stored, and the CopyFrom ceiling
	User        string // users to log in as: User, or User1..UserN when Users > 1
	Password    string
	Users       int

	Publishers int           // P MQTT publishers
	Rate       int           // R readings/s in total
	Duration   time.Duration // D
	Clients    int           // C WebSocket clients receiving readings

	ChatSenders int // K
	ChatMembers int // M connections in the room, senders included
	ChatRate    int // messages/s in total
	Room        string

	Idle int // N idle authenticated connections

	Ceilings bool          // measure the broker-alone and database-alone ceilings
	Drain    time.Duration // bound on waiting for the last readings/messages

	Log io.Writer // progress lines; nil: none
}

// Run drives the server as cfg says and returns the figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Drain <= 0 {
		cfg.Drain = 30 * time.Second
	}
	if cfg.Room == "" {
		cfg.Room = "general"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	r := &runner{cfg: cfg, id: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}
	return r.run(ctx)
}

type runner struct {
	cfg    Config
	id     string   // this run's tag in sensor ids and chat contents
	tokens []string // one per user
	res    Result

	samplerStop chan struct{}
	samplerDone chan struct{}
	mu          sync.Mutex // guards the sampled series below
	peakRSS     float64
	ingested    []sample // watchroom_readings_ingested_total over time
}

type sample struct {
	at time.Time
	v  float64
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	c := r.cfg
	r.res.Config = ConfigSummary{Publishers: c.Publishers, Rate: c.Rate, DurationS: c.Duration.Seconds(), Clients: c.Clients,
		ChatSenders: c.ChatSenders, ChatMembers: c.ChatMembers, ChatRate: c.ChatRate, Idle: c.Idle, Users: max(c.Users, 1)}
	r.res.Started = time.Now().UTC()
	if err := r.loginAll(ctx); err != nil {
		return nil, err
	}
	var before map[string]float64
	if c.MetricsAddr != "" {
		var err error
		if before, err = scrape(ctx, c.MetricsAddr); err != nil {
			return nil, err
		}
		r.res.Server.GoroutinesBefore = before["go_goroutines"]
		r.startSampler(ctx)
	}
	if c.Idle > 0 {
		if err := r.idle(ctx); err != nil {
			return nil, fmt.Errorf("idle connections: %w", err)
		}
	}
	if c.Publishers > 0 && c.Rate > 0 && c.Duration > 0 {
		if err := r.live(ctx); err != nil {
			return nil, fmt.Errorf("readings: %w", err)
		}
	}
	if c.ChatSenders > 0 && c.ChatRate > 0 && c.Duration > 0 {
		if err := r.chat(ctx); err != nil {
			return nil, fmt.Errorf("chat: %w", err)
		}
	}
	if c.Ceilings && c.Publishers > 0 && c.Rate > 0 {
		if err := r.brokerCeiling(ctx); err != nil {
			return nil, fmt.Errorf("broker ceiling: %w", err)
		}
		if c.DatabaseURL != "" {
			if err := r.copyCeiling(ctx); err != nil {
				return nil, fmt.Errorf("database ceiling: %w", err)
			}
		}
	}
	if c.MetricsAddr != "" {
		r.stopSampler()
		time.Sleep(time.Second) // let closed connections' goroutines end
		after, err := scrape(ctx, c.MetricsAddr)
		if err != nil {
			return nil, err
		}
		r.res.Server.CPUSeconds = after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]
		r.res.Server.GoroutinesAfter = after["go_goroutines"]
		r.res.Server.PeakRSSMB = max(r.peakRSS, after["process_resident_memory_bytes"]) / (1 << 20)
		r.res.Server.SlowConsumerCloses = after[`watchroom_ws_disconnects_total{reason="slow_consumer"}`] -
			before[`watchroom_ws_disconnects_total{reason="slow_consumer"}`]
		if n := after["watchroom_ingest_batch_size_count"] - before["watchroom_ingest_batch_size_count"]; n > 0 {
			r.res.Ingest.BatchAvg = (after["watchroom_ingest_batch_size_sum"] - before["watchroom_ingest_batch_size_sum"]) / n
			r.res.Ingest.CommitAvgMs = 1000 * (after["watchroom_ingest_flush_seconds_sum"] - before["watchroom_ingest_flush_seconds_sum"]) / n
			r.res.Ingest.Commits = n
		}
	}
	r.res.Ratios()
	return &r.res, nil
}

func (r *runner) userName(i int) string {
	if r.cfg.Users <= 1 {
		return r.cfg.User
	}
	return r.cfg.User + strconv.Itoa(i+1)
}

func (r *runner) loginAll(ctx context.Context) error {
	n := max(r.cfg.Users, 1)
	for i := range n {
		tok, err := login(ctx, r.cfg.HTTPAddr, r.userName(i), r.cfg.Password)
		if err != nil {
			return err
		}
		r.tokens = append(r.tokens, tok)
	}
	return nil
}

func (r *runner) token(i int) string { return r.tokens[i%len(r.tokens)] }

// startSampler scrapes the metrics listener every 250 ms for the peak
// RSS and the stored-readings counter, until stopSampler.
func (r *runner) startSampler(ctx context.Context) {
	r.samplerStop, r.samplerDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.samplerDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if vals, err := scrape(ctx, r.cfg.MetricsAddr); err == nil {
				r.mu.Lock()
				r.peakRSS = max(r.peakRSS, vals["process_resident_memory_bytes"])
				r.ingested = append(r.ingested, sample{time.Now(), vals["watchroom_readings_ingested_total"]})
				r.mu.Unlock()
			}
			select {
			case <-r.samplerStop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (r *runner) stopSampler() {
	close(r.samplerStop)
	<-r.samplerDone
}

// connectMany dials n authenticated connections, 32 at a time.
func (r *runner) connectMany(ctx context.Context, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conns[i], errs[i] = dialWS(ctx, r.cfg.HTTPAddr, r.token(i))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, fmt.Errorf("connect %d (raise WATCHROOM_WS_MAX_PER_USER/_PER_ADDR on the server, or use --users): %w", n, err)
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// idle opens N authenticated connections that only answer pings, and
// measures the server's RSS and goroutines before and after.
func (r *runner) idle(ctx context.Context) error {
	rss := func() float64 {
		vals, err := scrape(ctx, r.cfg.MetricsAddr)
		if err != nil {
			return 0
		}
		return vals["process_resident_memory_bytes"]
	}
	var gBefore float64
	before := rss()
	if vals, err := scrape(ctx, r.cfg.MetricsAddr); err == nil {
		gBefore = vals["go_goroutines"]
	}
	r.logf("opening %d idle connections", r.cfg.Idle)
	start := time.Now()
	conns, err := r.connectMany(ctx, r.cfg.Idle)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	for _, c := range conns {
		c.CloseRead(ctx) // answers pings and close frames, discards the rest
	}
	r.res.Idle.Connections = r.cfg.Idle
	r.res.Idle.ConnectSeconds = time.Since(start).Seconds()
	time.Sleep(3 * time.Second)
	after := rss()
	r.res.Idle.RSSBeforeMB = before / (1 << 20)
	r.res.Idle.RSSAfterMB = after / (1 << 20)
	r.res.Idle.RSSPerConnKB = (after - before) / float64(r.cfg.Idle) / 1024
	if vals, err := scrape(ctx, r.cfg.MetricsAddr); err == nil {
		r.res.Idle.GoroutinesPerConn = (vals["go_goroutines"] - gBefore) / float64(r.cfg.Idle)
	}
	r.logf("idle: %.1f KB RSS per connection", r.res.Idle.RSSPerConnKB)
	return nil
}

// publisher is one MQTT publishing client.
func newMQTT(url, id string) (mqtt.Client, error) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("mqtt %s: connect: %v", id, tok.Error())
	}
	return c, nil
}

// publishPaced publishes indices p, p+P, p+2P, … < total of the space
// starting at base (ts = base + i µs) at rate/P per second (0: as fast as
// the broker takes them), recording sentAt and counting PUBACKs. It
// returns when every PUBACK arrived or the drain bound passed.
func publishPaced(ctx context.Context, c mqtt.Client, topic string, p, P, total, rate int, base time.Time,
	sentAt []atomic.Int64, acked *atomic.Int64, drain time.Duration) error {
	toks := make(chan mqtt.Token, 1<<16)
	ackDone := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(drain)
		var err error
		for tok := range toks {
			if err != nil {
				continue
			}
			if !tok.WaitTimeout(max(time.Until(deadline), time.Millisecond)) {
				err = errors.New("PUBACK missing at the end of the drain bound")
				continue
			}
			if tok.Error() != nil {
				err = tok.Error()
				continue
			}
			acked.Add(1)
		}
		ackDone <- err
	}()
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(P) / float64(rate))
	}
	buf := make([]byte, 0, 96)
	for k, i := 0, p; i < total; k, i = k+1, i+P {
		if ctx.Err() != nil {
			break
		}
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 500*time.Microsecond {
				time.Sleep(wait)
			}
		}
		ts := base.Add(time.Duration(i) * time.Microsecond)
		buf = append(buf[:0], `{"value":`...)
		buf = strconv.AppendInt(buf, int64(i%1000), 10)
		buf = append(buf, `,"ts":"`...)
		buf = ts.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000000Z")
		buf = append(buf, `"}`...)
		sentAt[i].Store(time.Now().UnixNano())
		toks <- c.Publish(topic, 1, false, string(buf))
	}
	close(toks)
	return <-ackDone
}
