package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/watchroom/watchroom/frontend"
	"github.com/watchroom/watchroom/internal/alerts"
	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/backplane"
	"github.com/watchroom/watchroom/internal/broker"
	"github.com/watchroom/watchroom/internal/config"
	"github.com/watchroom/watchroom/internal/devices"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/ingest"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/rooms"
	"github.com/watchroom/watchroom/internal/store"
	"github.com/watchroom/watchroom/internal/web"
)

func runServe(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, env, stderr)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required, e.g. postgres://postgres@127.0.0.1:5432/watchroom?sslmode=disable")
	}
	log := newLogger(cfg, stderr)
	return serve(ctx, cfg, log, nil)
}

func parseConfig(name string, args, env []string, stderr io.Writer) (config.Config, error) {
	host, _ := os.Hostname()
	cfg, err := config.Parse(name, args, env, host, stderr)
	if err != nil {
		return cfg, err
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the server until ctx is done, then shuts it down in a fixed
// order:
//
//  1. stop accepting HTTP and WebSocket connections (app.Shutdown, in the
//     background: it closes the listener at once but then waits for the
//     open WebSocket handlers, which return only once the hub closes them;
//     a late upgrade is refused by the hub's register);
//  2. stop ingest: its final flush is committed, acked and pushed through
//     the hub to the clients still connected (with a share group, through
//     the backplane, stopped next: it delivers what it holds in seq order
//     and publishes what is queued to the other instances);
//  3. close every WebSocket with 1001 (h.Shutdown: the connections' queues,
//     holding that last push, are written before the close frame only as
//     far as the hub's writer does so) and wait for the HTTP shutdown;
//  4. store and post the pending alert changes; disconnect the command
//     client; stop rooms, the hub's ticker, the memory task and the data
//     lifecycle task; release the instance's claim; stop the embedded
//     broker; close the database pool.
//
// ready, when not nil, is called once everything is listening.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(served)) error {
	p, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.close()
	return p.run(ctx, cfg, log, ready)
}

// parts is what serve wires together; build makes them, run starts them
// and stops them in the documented order, close releases the database and
// the embedded broker.
type parts struct {
	st          *store.Store
	claim       *store.Claim // this instance's id and MQTT client id
	mqtt        mqttBroker
	reg         *prometheus.Registry
	h           *hub.Hub
	revocations *auth.Watcher
	mem         *memoryReleaser
	bp          *backplane.Backplane // nil without a share group
	rm          *rooms.Rooms
	det         *alerts.Detector
	in          *ingest.Ingest
	dev         *devices.Devices
	life        *store.Lifecycle
	app         *web.App
	tls         bool
}

func (p *parts) close() {
	if p.mqtt.stop != nil {
		p.mqtt.stop()
	}
	if p.claim != nil {
		p.claim.Close()
	}
	p.st.Close()
}

// build opens the database (migrating it), the broker and every part, and
// wires them: data flows ingest → store → hub, rooms and alerts publish
// through the hub, and each feature registers its own /ws requests.
func build(ctx context.Context, cfg config.Config, log *slog.Logger) (p *parts, err error) {
	if err := store.Migrate(ctx, cfg.DatabaseURL, log.With("component", "store")); err != nil {
		return nil, err
	}
	p = &parts{}
	if p.st, err = store.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	built := p // p itself is nil once an error is returned
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	st := p.st
	// Before any MQTT client exists: a second instance with our client id
	// would throw ours off the broker in a loop.
	if p.claim, err = claimInstance(ctx, cfg, st, log); err != nil {
		return nil, err
	}
	tokens, err := newTokens(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	sessions := auth.NewSessions(tokens, st, time.Now)
	if cfg.AdminPassword != "" {
		if err := upsertUser(ctx, st, "admin", model.RoleAdmin, cfg.AdminPassword); err != nil {
			return nil, fmt.Errorf("admin user from WATCHROOM_ADMIN_PASSWORD: %w", err)
		}
	}
	hintFirstUser(ctx, st, log)
	if p.mqtt, err = brokerURL(cfg, st, log); err != nil {
		return nil, err
	}
	p.reg = prometheus.NewRegistry()
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg := p.reg

	h := hub.New(hubConfig(cfg), sessions, st, reg, log.With("component", "hub"))
	p.h = h
	// Revocations made anywhere end the sessions here within a poll.
	p.revocations = auth.NewWatcher(st, auth.DefaultWatchInterval, func(ctx context.Context, e model.SessionEvent) {
		sessions.Forget(e.User)
		h.Recheck(ctx, e.User)
	}, log.With("component", "auth"))
	h.HandleResume("readings", hub.ReplayReadings(st))
	p.mem = newMemoryReleaser(func() int64 { return h.Stats().ActiveConnections }, debug.FreeOSMemory,
		reg, log.With("component", "memory"))

	// rooms before alerts: alerts are posted to room "alerts" through rooms
	p.rm = rooms.New(rooms.Config{
		OfflineGrace:    cfg.PresenceGrace,
		MaxRoomsPerUser: cfg.RoomsPerUser,
		CreateRate:      cfg.RoomCreateRate,
		CreateBurst:     cfg.RoomCreateBurst,
	}, st, h, st, reg, log.With("component", "rooms"))
	p.rm.Register(h)
	// alerts before ingest: alert detection is an ingest sink
	detCfg := alerts.Config{RegisteredOnly: cfg.Sensors == config.SensorsRegistered}
	if cfg.MQTTShareGroup != "" {
		// Several instances: one detector, elected (docs/alerts.md).
		detCfg.Elector = &pgElector{st: st, name: detectorLeadName, label: "alerts " + cfg.InstanceID, every: leadInterval, log: log.With("component", "alerts")}
		detCfg.Handover = pgHandover{st: st}
		detCfg.ResumeOverlap = alertsResumeOverlap
	}
	p.det = alerts.New(detCfg,
		st, p.rm, h, reg, log.With("component", "alerts"))
	p.det.Register(h)
	// Committed batches go to the hub and alert detection: straight from
	// ingest on a single instance; with a share group, through the
	// backplane, which also brings the other instances' batches and
	// delivers all of them in seq order.
	sinks := []ingest.ReadingSink{h, p.det}
	backplaneReady := []web.ReadyCheck{}
	if cfg.MQTTShareGroup != "" {
		if p.bp, err = backplane.New(backplane.Config{
			BrokerURL: p.mqtt.url,
			ClientID:  cfg.MQTTClientID + backplaneClientSuffix,
			Origin:    cfg.InstanceID,
			Hold:      cfg.BackplaneHold,
		}, st, []backplane.Sink{h, p.det}, reg, log.With("component", "backplane")); err != nil {
			return nil, err
		}
		// Before ingest can commit: batches after this seq are delivered.
		if err := p.bp.Init(ctx); err != nil {
			return nil, err
		}
		sinks = []ingest.ReadingSink{p.bp}
		// Messages, presence and room changes cross on it too.
		if err := joinCluster(p.bp, cfg.InstanceID, h, p.rm, log.With("component", "cluster")); err != nil {
			return nil, err
		}
		backplaneReady = append(backplaneReady, web.ReadyCheck{Name: "mqtt_backplane", Check: connected(p.bp.Connected)})
	}
	inCfg := ingest.Config{
		BrokerURL:     p.mqtt.url,
		ClientID:      cfg.MQTTClientID,
		Topics:        cfg.MQTTTopics,
		ShareGroup:    cfg.MQTTShareGroup,
		BatchSize:     cfg.BatchSize,
		FlushInterval: cfg.FlushInterval,
		QueueSize:     cfg.IngestQueue,
		CommitTimeout: cfg.CommitTimeout,
		Admission:     admission(cfg, st),
	}
	if cfg.MQTTShareGroup != "" && cfg.Ingest == config.IngestElected {
		// One session for the group, held by the elected instance
		// (docs/deploy.md, "Scaling out").
		inCfg.ClientID, inCfg.ShareGroup = electedIngestClientID(cfg.MQTTShareGroup), ""
		inCfg.Lead = (&pgElector{st: st, name: ingestLeadName, label: "ingest " + cfg.InstanceID, every: leadInterval,
			log: log.With("component", "ingest")}).leadIngest
	}
	if p.in, err = ingest.New(inCfg, st, sinks, reg, log.With("component", "ingest")); err != nil {
		return nil, err
	}
	if p.dev, err = devices.New(devices.Config{
		BrokerURL: p.mqtt.url,
		ClientID:  cfg.MQTTClientID + devicesClientSuffix,
		Timeout:   cfg.CommandTimeout,
		// Any instance may finish any command (the store decides).
		ShareGroup: cfg.MQTTShareGroup,
	}, st, h, reg, log.With("component", "devices")); err != nil {
		return nil, err
	}
	p.dev.Register(h)
	// data lifecycle: partitions ahead, retention (docs/storage.md)
	p.life = store.NewLifecycle(st, store.LifecycleConfig{
		RetentionRaw: cfg.RetentionRaw, MaxRawBytes: cfg.MaxRawBytes,
		Retention1m: cfg.Retention1m, Retention1h: cfg.Retention1h,
		AheadDays: cfg.PartitionsAhead, Interval: cfg.DataMaintenanceTick,
	}, time.Now, reg, log.With("component", "data"))

	static, err := fs.Sub(frontend.Dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("embedded dashboard: %w", err)
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		if tlsCfg, err = web.LoadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	p.tls = tlsCfg != nil
	p.app = web.New(web.Config{
		Store: st, Tokens: sessions, Hub: h,
		Ready: append([]web.ReadyCheck{
			{Name: "database", Check: st.Ping},
			// A standing-by instance (WATCHROOM_INGEST=elected) serves
			// its clients as well as the one that ingests.
			{Name: "mqtt_ingest", Check: connected(func() bool { return p.in.Connected() || p.in.Standby() })},
			{Name: "mqtt_devices", Check: connected(p.dev.Connected)},
		}, backplaneReady...),
		Gatherer: reg, Registerer: reg,
		AllowedOrigins: cfg.AllowedOrigins,
		TrustedProxies: cfg.TrustedProxies,
		TLS:            tlsCfg,
		Static:         static,
		Rooms:          p.rm,
		Alerts:         p.det,
		Devices:        deviceAdmin{st: st, revoked: p.mqtt.revoke},
		Log:            log.With("component", "web"),
		BaseContext:    context.WithoutCancel(ctx),
	})
	return p, nil
}

// hubConfig is the hub's part of the configuration.
func hubConfig(cfg config.Config) hub.Config {
	return hub.Config{
		SendQueue:     cfg.WSSendQueue,
		AuthTimeout:   cfg.WSAuthTimeout,
		PingInterval:  cfg.WSPingInterval,
		Rate:          cfg.WSRate,
		Burst:         cfg.WSBurst,
		WriteTimeout:  cfg.WSWriteTimeout,
		SendBuffer:    cfg.WSSendBuffer,
		HighWaterMsgs: cfg.WSHighWater,
		ResumeMax:     cfg.ResumeMax,
		ResumeMaxAge:  cfg.ResumeMaxAge,
		MaxPerUser:    cfg.WSMaxPerUser,
		MaxPerAddr:    cfg.WSMaxPerAddr,
	}
}

// run listens, starts every part, waits for ctx (or a part that fails)
// and stops them in the order serve documents.
func (p *parts) run(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(served)) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	// /metrics (and /debug/pprof) on its own listener, off the public port.
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (WATCHROOM_METRICS_ADDR; empty disables): %w", cfg.MetricsAddr, err)
		}
		metricsSrv := web.NewMetricsServer(p.reg)
		go func() { _ = metricsSrv.Serve(mln) }() // returns at Close
		defer metricsSrv.Close()
	}

	claimTask := start(p.claim.Run)
	hubTask := start(func(ctx context.Context) error { return p.h.Run(ctx) })
	revocationsTask := start(p.revocations.Run)
	alertsTask := start(p.det.Run) // before ingest: it loads its state first
	// Before ingest: it takes ingest's batches.
	bpTask := start(func(ctx context.Context) error {
		if p.bp == nil {
			<-ctx.Done()
			return nil
		}
		return p.bp.Run(ctx)
	})
	ingestTask := start(p.in.Run)
	devTask := start(p.dev.Run)
	roomsTask := start(p.rm.Run)
	memTask := start(func(ctx context.Context) error {
		tick := time.NewTicker(memoryCheckInterval)
		defer tick.Stop()
		p.mem.run(ctx, tick.C)
		return nil
	})
	lifeTask := start(func(ctx context.Context) error {
		tick := time.NewTicker(cfg.DataMaintenanceTick)
		defer tick.Stop()
		return p.life.Run(ctx, tick.C)
	})
	httpErr := make(chan error, 1)
	go func() { httpErr <- p.app.Serve(ln) }()
	log.Info("watchroom serving", "http", ln.Addr().String(), "tls", p.tls, "metrics", cfg.MetricsAddr, "mqtt", redactURL(p.mqtt.url),
		"instance_id", cfg.InstanceID, "client_id", cfg.MQTTClientID)
	if ready != nil {
		ready(served{httpAddr: ln.Addr().String(), gatewayURL: p.mqtt.gatewayURL})
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	case <-ingestTask.done:
		runErr = fmt.Errorf("ingest stopped: %w", ingestTask.err)
	case <-devTask.done:
		runErr = fmt.Errorf("devices stopped: %w", devTask.err)
	case <-bpTask.done:
		runErr = fmt.Errorf("backplane stopped: %w", bpTask.err)
	case <-claimTask.done:
		runErr = claimError(cfg, claimTask.err)
	}
	log.Info("shutting down")

	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- p.app.Shutdown(shutCtx) }()
	if err := ingestTask.stop(); err != nil {
		log.Error("ingest shutdown", "err", err)
	}
	// After ingest, before the hub: the final flush goes out to the other
	// instances and, in order, to this instance's clients.
	if err := bpTask.stop(); err != nil {
		log.Error("backplane shutdown", "err", err)
	}
	// After ingest: its final flush has been handed to the hub's queues.
	if err := p.h.Shutdown(shutCtx); err != nil {
		log.Warn("websocket shutdown", "err", err)
	}
	if err := <-httpDone; err != nil {
		log.Warn("http shutdown", "err", err)
	}
	// After ingest: no reading arrives any more; its last changes are stored.
	if err := alertsTask.stop(); err != nil {
		log.Error("alerts shutdown", "err", err)
	}
	if err := devTask.stop(); err != nil {
		log.Error("devices shutdown", "err", err)
	}
	if err := roomsTask.stop(); err != nil {
		log.Error("rooms shutdown", "err", err)
	}
	_ = memTask.stop()
	_ = lifeTask.stop() // after ingest: a round never races the last flush for a lock
	_ = revocationsTask.stop()
	_ = hubTask.stop()
	_ = claimTask.stop() // last: the id is ours until everything above has stopped
	log.Info("stopped")
	return runErr
}

// admission is who may create readings: registered devices only in
// registered mode, and new series at a bounded rate in every mode
// (docs/mqtt.md).
func admission(cfg config.Config, st *store.Store) ingest.Admission {
	a := ingest.Admission{Known: st, NewSeriesRate: cfg.NewSeriesRate, NewSeriesBurst: cfg.NewSeriesBurst}
	if cfg.Sensors == config.SensorsRegistered {
		a.Registry = st
	}
	return a
}

// served is what serve tells its ready callback.
type served struct {
	httpAddr string
	// gatewayURL is the embedded broker's URL with the gateway user's
	// credentials, "" with an external broker or no gateway password.
	gatewayURL string
}

// mqttBroker is the broker serve's clients use.
type mqttBroker struct {
	url        string // with the credentials of Watchroom's own clients
	gatewayURL string // see served
	revoke     func(id string)
	stop       func()
}

// brokerURL returns the configured broker, or starts the embedded one when
// none is configured. The embedded broker checks every client against the
// devices table (AuthConfig); Watchroom's own clients use a service
// password generated here, on every start, and never written anywhere.
func brokerURL(cfg config.Config, st *store.Store, log *slog.Logger) (mqttBroker, error) {
	if cfg.MQTTURL != "" {
		return mqttBroker{url: cfg.MQTTURL, revoke: func(string) {}, stop: func() {}}, nil
	}
	servicePass := broker.NewSecret()
	b, err := broker.New(broker.Config{Addr: cfg.MQTTListen, Auth: &broker.AuthConfig{
		Devices:          st,
		ServicePassword:  servicePass,
		GatewayPassword:  cfg.MQTTGatewayPassword,
		AllowAnonymous:   cfg.Sensors == config.SensorsOpen,
		ServiceClientIDs: []string{cfg.MQTTClientID, cfg.MQTTClientID + devicesClientSuffix},
	}}, log.With("component", "broker"))
	if err != nil {
		return mqttBroker{}, err
	}
	if err := b.Start(); err != nil {
		return mqttBroker{}, err
	}
	log.Info("embedded MQTT broker listening", "addr", b.Addr(), "anonymous_readings", cfg.Sensors == config.SensorsOpen,
		"gateway", cfg.MQTTGatewayPassword != "")
	m := mqttBroker{url: withUser(b.URL(), broker.ServiceUser, servicePass), revoke: b.Revoke, stop: func() { _ = b.Close() }}
	if cfg.MQTTGatewayPassword != "" {
		m.gatewayURL = withUser(b.URL(), broker.GatewayUser, cfg.MQTTGatewayPassword)
	}
	return m, nil
}

// Names an instance claims (store.Claim) for its life.
const (
	instanceClaimPrefix   = "instance:"
	mqttClientClaimPrefix = "mqtt-client:"
)

// claimPatience is how long a start waits for a claimed name to be freed:
// a process restarted at once after a crash may find the session of its
// previous run not yet ended by PostgreSQL.
const claimPatience = 2 * time.Second

// claimInstance claims the instance id and the MQTT client id for this
// process, so that two instances sharing a database never run with the
// same one; a refusal names the id and the setting to change.
func claimInstance(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger) (*store.Claim, error) {
	names := []string{instanceClaimPrefix + cfg.InstanceID, mqttClientClaimPrefix + cfg.MQTTClientID}
	deadline := time.Now().Add(claimPatience)
	for {
		c, err := st.Claim(ctx, store.ClaimConfig{Label: "instance " + cfg.InstanceID}, log.With("component", "instance"), names...)
		var taken *store.ClaimTakenError
		if err == nil || !errors.As(err, &taken) || time.Now().After(deadline) {
			return c, claimError(cfg, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// claimError explains a refused claim in terms of the settings.
func claimError(cfg config.Config, err error) error {
	var taken *store.ClaimTakenError
	if !errors.As(err, &taken) {
		return err
	}
	holder := ""
	if taken.Holder != "" {
		holder = " (" + taken.Holder + ")"
	}
	if strings.HasPrefix(taken.Name, mqttClientClaimPrefix) {
		return fmt.Errorf("another Watchroom instance sharing this database uses MQTT client id %q%s: give each instance its own WATCHROOM_MQTT_CLIENT_ID (--mqtt-client-id), or leave it unset to derive it from WATCHROOM_INSTANCE_ID",
			cfg.MQTTClientID, holder)
	}
	return fmt.Errorf("another Watchroom instance with instance id %q is running against this database%s: give each instance its own WATCHROOM_INSTANCE_ID (--instance-id)",
		cfg.InstanceID, holder)
}

// devicesClientSuffix makes the command client's id from the instance's.
const devicesClientSuffix = "-devices"

// backplaneClientSuffix makes the backplane client's id from the instance's.
const backplaneClientSuffix = "-backplane"

// electedIngestClientID is the client id of the one ingest session of a
// share group with WATCHROOM_INGEST=elected, held by the elected instance.
func electedIngestClientID(group string) string { return "watchroom-" + group + "-ingest" }

var (
	_ ingest.ReadingSink = (*backplane.Backplane)(nil)
	_ ingest.SeqSink     = (*backplane.Backplane)(nil)
)

func withUser(raw, user, pass string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// task is a long-running part with its own context, so that serve can
// stop the parts one by one in a fixed order.
type task struct {
	cancel context.CancelFunc
	// done is closed once run has returned; err is then set and may be
	// read any number of times (serve's select and stop both read it).
	done chan struct{}
	err  error
	// after is the clock of stop's wait; time.After outside tests.
	after func(time.Duration) <-chan time.Time
}

// stopWait bounds how long stop waits for a task to return.
const stopWait = 15 * time.Second

func start(run func(ctx context.Context) error) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{cancel: cancel, done: make(chan struct{}), after: time.After}
	go func() {
		defer close(t.done)
		t.err = run(ctx)
	}()
	return t
}

// stop cancels the task and waits for it to return; a task that has
// already returned gives its error at once.
func (t *task) stop() error {
	t.cancel()
	// Checked first: select picks at random among ready cases.
	select {
	case <-t.done:
		return t.err
	default:
	}
	select {
	case <-t.done:
		return t.err
	case <-t.after(stopWait):
		return fmt.Errorf("did not stop within %s", stopWait)
	}
}

func connected(f func() bool) func(context.Context) error {
	return func(context.Context) error {
		if !f() {
			return errors.New("not connected to the MQTT broker")
		}
		return nil
	}
}

const jwtSecretSetting = "jwt_secret"

// newTokens uses the configured secret, or one generated on the first start
// and kept in the database, so tokens survive restarts and every instance
// sharing the database accepts them.
func newTokens(ctx context.Context, cfg config.Config, st *store.Store) (*auth.Tokens, error) {
	secret := cfg.JWTSecret
	if secret == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generate token secret: %w", err)
		}
		s, err := st.SettingOrInit(ctx, jwtSecretSetting, hex.EncodeToString(b[:]))
		if err != nil {
			return nil, err
		}
		secret = s
	}
	t, err := auth.NewTokens([]byte(secret), cfg.JWTTTL, time.Now)
	if err != nil {
		return nil, fmt.Errorf("WATCHROOM_JWT_SECRET: %w", err)
	}
	return t, nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// After a connection storm (thousands of WebSockets dropped at once) the
// heap they used is garbage, but the Go runtime returns it to the OS only
// gradually, so RSS stays high for minutes. memoryReleaser watches the
// hub's active connection count and calls debug.FreeOSMemory once when it
// has fallen by memoryReleaseDrop or more from its peak since the last
// release. See docs/deploy.md (Memory).
const (
	// memoryReleaseDrop is the drop in active connections that triggers a
	// release: at ~20-130 KB of heap per connection, 500 of them are
	// roughly 10-65 MB, worth a forced GC (a few ms of CPU).
	memoryReleaseDrop = 500
	// memoryCheckInterval is how often the connection count is sampled.
	memoryCheckInterval = 10 * time.Second
)

type memoryReleaser struct {
	active   func() int64 // the hub's active connections
	free     func()       // debug.FreeOSMemory outside tests
	released prometheus.Counter
	log      *slog.Logger
}

func newMemoryReleaser(active func() int64, free func(), reg prometheus.Registerer, log *slog.Logger) *memoryReleaser {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "watchroom_memory_released_total",
		Help: "Times the heap was returned to the OS after the active WebSocket connections fell by 500 or more.",
	})
	reg.MustRegister(c)
	return &memoryReleaser{active: active, free: free, released: c, log: log}
}

// run samples the connection count at each tick until ctx is done. It is
// the only goroutine that touches its peak.
func (m *memoryReleaser) run(ctx context.Context, ticks <-chan time.Time) {
	peak := m.active()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		n := m.active()
		peak = max(peak, n)
		if peak-n < memoryReleaseDrop {
			continue
		}
		m.free()
		m.released.Inc()
		m.log.Info("returned memory to the OS after connections dropped", "from", peak, "to", n)
		peak = n // the next release needs a new rise and fall
	}
}

// hintFirstUser logs how to create the first user when there is none: a
// fresh database otherwise serves a login page nobody can pass. A failed
// count only loses the hint.
func hintFirstUser(ctx context.Context, st *store.Store, log *slog.Logger) {
	var n int64
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil || n > 0 {
		return
	}
	log.Warn("no users yet: create one with `echo PASSWORD | watchroom user add --name NAME --role admin --password-stdin`, or set WATCHROOM_ADMIN_PASSWORD to create user admin at start")
}
