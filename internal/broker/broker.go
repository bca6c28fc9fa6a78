package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults mirror the Mosquitto settings Watchroom documents for production
// (max_inflight_messages 1000, max_queued_messages 100000).
const (
	DefaultMaxInflight = 1000
	DefaultMaxQueued   = 100000
)

// MaxPacketSize bounds a whole MQTT packet (topic, headers and payload) in
// both of Watchroom's brokers: here, and max_packet_size in
// mosquitto/mosquitto.conf. A reading is a few hundred bytes; 256 KiB leaves
// room for a batch of them and refuses the rest. mochi checks it against
// the length in the fixed header and disconnects the client before reading
// the packet's body, so an oversize message is never held in memory.
const MaxPacketSize = 256 << 10

// maxPacketIDs bounds what one session can hold: every stored QoS 1/2
// message occupies one of the 16-bit packet ids.
const maxPacketIDs = math.MaxUint16

// Config configures the embedded broker.
type Config struct {
	// Addr is the TCP address to listen on, e.g. ":1883" or "127.0.0.1:0".
	Addr string
	// MaxInflight bounds the QoS 1/2 messages a client may have in flight
	// towards the broker, and towards an MQTT 5 client (its Receive Maximum
	// is capped to this). mochi does not window QoS 1 deliveries to MQTT
	// 3.1.1 clients: it writes them as fast as the socket takes them.
	// 0 means DefaultMaxInflight.
	MaxInflight int
	// MaxQueued bounds the QoS 1/2 messages stored per session (sent but not
	// acknowledged, or queued while the client is away) and the length of
	// each client's write queue. Capped at 65535 for stored messages (packet
	// ids). 0 means DefaultMaxQueued.
	MaxQueued int
	// Registerer, if set, receives the broker's collectors: dropped
	// messages by reason, connected clients, in-flight messages, refusals.
	Registerer prometheus.Registerer
	// Auth, if set, turns on authentication and topic authorization (see
	// AuthConfig). nil lets every client in with access to every topic:
	// for tests of the broker alone, never for serve or demo.
	Auth *AuthConfig
}

// Broker is an embedded MQTT broker.
type Broker struct {
	cfg Config
	log *slog.Logger
	srv *mqtt.Server

	auth *authHook // nil without Config.Auth

	mu      sync.Mutex
	started bool
	closed  bool
	addr    atomic.Pointer[string]
	stop    chan struct{} // closed by Close; ends the revocation poller
	polled  chan struct{} // closed when the poller has returned
}

// New builds a broker; it does not listen until Start.
func New(cfg Config, log *slog.Logger) (*Broker, error) {
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxInflight < 0 || cfg.MaxInflight > math.MaxUint16 {
		return nil, fmt.Errorf("broker: max inflight %d out of range 1..%d", cfg.MaxInflight, math.MaxUint16)
	}
	if cfg.MaxQueued < 0 || cfg.MaxQueued > math.MaxInt32 {
		return nil, fmt.Errorf("broker: max queued %d out of range 1..%d", cfg.MaxQueued, math.MaxInt32)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	caps := mqtt.NewDefaultServerCapabilities()
	// MQTT 3.1.1 sessions have no expiry interval of their own: mochi
	// applies MaximumSessionExpiryInterval to them, so a smaller value would
	// silently throw away a persistent subscriber's session and its queue.
	caps.MaximumSessionExpiryInterval = math.MaxUint32
	// mochi's default (one day) deletes queued QoS 1 messages older than
	// that, also for v3 clients. 0 disables the broker-imposed limit; an
	// expiry an MQTT 5 publisher sets on its own message still applies.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumInflight = uint16(min(cfg.MaxQueued, maxPacketIDs))
	// A message that finds a client's write queue full is dropped, QoS 1
	// included, and never retried: make the queue as long as the session's
	// store so a subscriber that stalls is not skipped.
	caps.MaximumClientWritesPending = int32(cfg.MaxQueued)
	caps.ReceiveMaximum = uint16(cfg.MaxInflight)
	caps.MaximumPacketSize = MaxPacketSize

	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       slog.New(newQuietHandler(log.Handler(), nil)),
		// $SYS topics are not used by Watchroom; refresh them rarely.
		SysTopicResendInterval: 60,
	})
	b := &Broker{cfg: cfg, log: log, srv: srv, stop: make(chan struct{}), polled: make(chan struct{})}
	var hook mqtt.Hook = new(auth.AllowHook)
	if cfg.Auth != nil {
		if cfg.Auth.Devices == nil || cfg.Auth.ServicePassword == "" {
			return nil, errors.New("broker: auth needs Devices and ServicePassword")
		}
		b.auth = newAuthHook(*cfg.Auth, log)
		hook = b.auth
	}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	b.register(cfg.Registerer)
	return b, nil
}

// register exposes mochi's own atomic counters; reading them on scrape
// costs nothing on the publish path. It registers with MustRegister (a
// conflict is a wiring bug); a nil reg is a private registry.
func (b *Broker) register(reg prometheus.Registerer) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	info := b.srv.Info
	const droppedHelp = "Messages the broker dropped instead of delivering, by reason."
	collectors := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "watchroom_broker_dropped_messages_total",
			Help:        droppedHelp,
			ConstLabels: prometheus.Labels{"reason": "client_write_queue_full"},
		}, func() float64 { return float64(atomic.LoadInt64(&info.MessagesDropped)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "watchroom_broker_dropped_messages_total",
			Help:        droppedHelp,
			ConstLabels: prometheus.Labels{"reason": "session_queue_full"},
		}, func() float64 { return float64(atomic.LoadInt64(&info.InflightDropped)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "watchroom_broker_clients_connected",
			Help: "MQTT clients currently connected to the embedded broker.",
		}, func() float64 { return float64(atomic.LoadInt64(&info.ClientsConnected)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "watchroom_broker_inflight_messages",
			Help: "QoS 1/2 messages sent or queued but not yet acknowledged, all sessions.",
		}, func() float64 { return float64(atomic.LoadInt64(&info.Inflight)) }),
	}
	if b.auth != nil {
		collectors = append(collectors, b.auth.denied)
	}
	reg.MustRegister(collectors...)
}

// Start listens on the configured address and serves clients in the
// background. It returns once the listener is bound.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("broker: start: already closed")
	}
	if b.started {
		return errors.New("broker: start: already started")
	}
	// We bind the socket ourselves instead of letting mochi do it so that
	// the real address (port 0) is known. Go binds a wildcard address
	// (":1883") dual-stack with IPV6_V6ONLY off, so a port already taken on
	// an IPv4 address fails here instead of quietly ending up IPv6-only, as
	// Mosquitto does; the tests hold that for 127.0.0.1.
	ln, err := net.Listen("tcp", b.cfg.Addr)
	if err != nil {
		return fmt.Errorf("broker: listen on %q: %w", b.cfg.Addr, err)
	}
	if err := b.srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		_ = ln.Close()
		return fmt.Errorf("broker: add listener: %w", err)
	}
	if err := b.srv.Serve(); err != nil {
		_ = b.srv.Close()
		b.closed = true
		return fmt.Errorf("broker: serve: %w", err)
	}
	addr := ln.Addr().String()
	b.addr.Store(&addr)
	b.started = true
	if b.auth != nil {
		go b.pollRevocations()
	} else {
		close(b.polled)
	}
	b.log.Info("embedded MQTT broker listening", "addr", addr,
		"max_inflight", b.cfg.MaxInflight, "max_queued", b.cfg.MaxQueued)
	return nil
}

// Addr returns the bound host:port, or "" before Start.
func (b *Broker) Addr() string {
	if p := b.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// URL returns a URL local clients can dial, "tcp://127.0.0.1:PORT" when
// the broker listens on a wildcard or IPv4 loopback address, or "" before
// Start.
func (b *Broker) URL() string {
	addr := b.Addr()
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}

// Close disconnects every client and stops listening. Sessions and queued
// messages live in memory only and are lost. It is safe to call more than
// once and before Start.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.stop)
	if b.started {
		<-b.polled
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// Revoke disconnects every client connected as device id and makes its
// next connect read the database. Call it after the device was revoked in
// the store; devices revoked by another process are found by the poller
// within AuthConfig.CacheTTL. A no-op without Config.Auth.
func (b *Broker) Revoke(id string) {
	if b.auth == nil || id == "" || ReservedUser(id) {
		return
	}
	b.auth.forget(id)
	for _, cl := range b.srv.Clients.GetAll() {
		if string(cl.Properties.Username) == id {
			b.log.Info("disconnecting revoked device", "device", id, "client_id", cl.ID)
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		}
	}
}

// pollRevocations asks the store every CacheTTL which devices were revoked
// since it last asked, and disconnects them: a device revoked with the
// command line (another process) is cut off even while it only listens.
func (b *Broker) pollRevocations() {
	defer close(b.polled)
	tick := time.NewTicker(b.auth.cfg.CacheTTL)
	defer tick.Stop()
	var since time.Time // zero: the first poll reads every revoked device
	first := true
	for {
		ctx, cancel := context.WithTimeout(context.Background(), b.auth.cfg.lookupTimeout)
		ids, latest, err := b.auth.cfg.Devices.DevicesRevokedSince(ctx, since)
		cancel()
		switch {
		case err != nil:
			b.log.Warn("polling revoked devices failed", "err", err)
		case first:
			// Revoked before this start: nothing is connected yet.
			since, first = latest, false
		default:
			since = latest
			for _, id := range ids {
				b.Revoke(id)
			}
		}
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
	}
}
