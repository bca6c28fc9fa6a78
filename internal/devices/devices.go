package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/backoff"
	"github.com/watchroom/watchroom/internal/model"
)

// CommandStore is the audit trail of commands. *store.Store satisfies it.
type CommandStore interface {
	// InsertCommand records a command before it is published.
	InsertCommand(ctx context.Context, c model.Command) error
	// FinishCommand moves a pending command to its final status and returns
	// the updated row, or an error matching model.ErrNotFound if the command
	// is unknown or no longer pending.
	FinishCommand(ctx context.Context, id, status, message string, at time.Time) (model.Command, error)
	// Command returns one command, or an error matching model.ErrNotFound.
	Command(ctx context.Context, id string) (model.Command, error)
	// PendingCommands returns every command still pending, oldest first.
	PendingCommands(ctx context.Context) ([]model.Command, error)
	// TimeoutCommands finishes as timeout every command still pending
	// issued before issuedBefore and returns them (the sweep).
	TimeoutCommands(ctx context.Context, issuedBefore time.Time, message string, at time.Time) ([]model.Command, error)
}

// Notifier delivers command outcomes to users. The hub satisfies it.
type Notifier interface {
	// SendReliable stores a message for user and delivers it to all of the
	// user's connections; it is delivered again on each new connection
	// until acked.
	SendReliable(ctx context.Context, user, typ string, ref json.RawMessage, data any) error
}

// Config configures Devices.
type Config struct {
	BrokerURL string        // e.g. tcp://127.0.0.1:1883
	ClientID  string        // stable and unique per instance, e.g. "<base>-devices"
	Timeout   time.Duration // how long a device has to answer; default 10s
	Prefix    string        // topic prefix; default "devices"
	// ShareGroup, when set, subscribes to the responses as
	// $share/{group}/...: with several instances each response reaches
	// one of them (any instance can finish any command). Empty: every
	// instance gets every response and the store lets one finish it.
	ShareGroup string
}

// DefaultTimeout is Config.Timeout's default (config's
// WATCHROOM_COMMAND_TIMEOUT default is the same; its tests check it).
const DefaultTimeout = 10 * time.Second

const (
	defaultPrefix = "devices"

	// MessageType is the type of the reliable message carrying an outcome.
	MessageType = "command_response"

	// publishWait bounds how long Send waits for the broker's PUBACK.
	publishWait = 5 * time.Second
	// restartGrace is the least time a command reloaded at start keeps
	// waiting, so a response the broker queued for our persistent session
	// while we were down can still arrive and win over the timeout.
	restartGrace = 2 * time.Second
	// retryMin and retryMax bound the waits between attempts to load the
	// pending commands at start while the store fails.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// eventTimeout bounds the store and notifier calls made for one event.
	eventTimeout = 10 * time.Second
	// sweepSlack is how long past its timeout a command must still be
	// pending before the sweep finishes it: the issuing instance's own
	// timer goes first, and clocks of instances may differ a little.
	sweepSlack = 5 * time.Second
	// responseQueue is the depth of the channel between the paho callback
	// and the worker. Responses arrive at human pace (one per command).
	responseQueue = 1024
	timeoutQueue  = 256
)

// Devices sends commands to devices and turns their responses and timeouts
// into stored outcomes and reliable notifications. See the package doc for
// its concurrency rules.
type Devices struct {
	cfg      Config
	timeout  time.Duration
	prefix   string
	store    CommandStore
	notifier Notifier
	log      *slog.Logger
	m        *metrics
	client   mqtt.Client
	retry    backoff.Policy   // the start-up load of pending commands
	now      func() time.Time // time.Now outside tests; keeps the monotonic reading

	responses chan inbound // paho callback -> worker
	timeouts  chan string  // timers -> worker (command ids)
	stopped   chan struct{}
	started   atomic.Bool
	subbed    atomic.Bool

	mu      sync.Mutex
	pending map[string]*pending // command id -> in-flight command; guarded by mu
}

// pending is a command this process waits on. All fields but timer are set
// once before the entry is added to the map; timer is guarded by Devices.mu.
type pending struct {
	sensorID string
	action   string
	user     string
	ref      json.RawMessage // nil (JSON null) for commands reloaded at start
	issued   time.Time
	timer    *time.Timer
}

// inbound is one MQTT message handed from the paho callback to the worker.
type inbound struct {
	msg mqtt.Message
	at  time.Time // when it was received; the response time of the command
}

// Response is the data of a command_response message.
type Response struct {
	CommandID string  `json:"command_id"`
	SensorID  string  `json:"sensor_id"`
	Action    string  `json:"action"`
	Status    string  `json:"status"` // success, error or timeout
	Message   string  `json:"message"`
	LatencyMS float64 `json:"latency_ms"`
}

// New checks cfg, registers the metrics and prepares the MQTT client; it
// does not connect (Run does).
func New(cfg Config, st CommandStore, n Notifier, reg prometheus.Registerer, log *slog.Logger) (*Devices, error) {
	if cfg.BrokerURL == "" {
		return nil, errors.New("devices: broker URL is required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("devices: client id is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("devices: timeout %s must not be negative", cfg.Timeout)
	}
	d := &Devices{
		cfg:       cfg,
		timeout:   cfg.Timeout,
		prefix:    cfg.Prefix,
		store:     st,
		notifier:  n,
		log:       log,
		responses: make(chan inbound, responseQueue),
		timeouts:  make(chan string, timeoutQueue),
		stopped:   make(chan struct{}),
		pending:   make(map[string]*pending),
		retry:     backoff.Policy{Min: retryMin, Max: retryMax},
		now:       time.Now,
	}
	if d.timeout == 0 {
		d.timeout = DefaultTimeout
	}
	if d.prefix == "" {
		d.prefix = defaultPrefix
	}
	if strings.ContainsAny(d.prefix, "+#") || strings.HasPrefix(d.prefix, "/") || strings.HasSuffix(d.prefix, "/") {
		return nil, fmt.Errorf("devices: topic prefix %q must not contain wildcards or start or end with '/'", d.prefix)
	}
	d.m = newMetrics(reg)

	opts := mqtt.NewClientOptions().
		AddBroker(cfg.BrokerURL).
		SetClientID(cfg.ClientID).
		// The broker keeps responses that arrive while we restart.
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		// Acked by the worker once the response is handled (see doc.go).
		SetAutoAckDisabled(true).
		// Messages of the persistent session can arrive before Subscribe
		// has installed its route; without this they would never be acked.
		SetDefaultPublishHandler(d.onMessage).
		SetOnConnectHandler(d.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			d.subbed.Store(false)
			d.log.Warn("devices: MQTT connection lost", "err", err)
		})
	d.client = mqtt.NewClient(opts)
	return d, nil
}

// Connected reports whether the MQTT connection is up and the response
// subscription is in place. Safe from any goroutine.
func (d *Devices) Connected() bool {
	return d.client.IsConnectionOpen() && d.subbed.Load()
}

// Run reloads the commands left pending by an earlier run, connects (and
// keeps reconnecting) to the broker and handles responses and timeouts
// until ctx is done; then it stops the timers and disconnects. Responses
// still queued are not acked, so the broker delivers them again on the next
// start. Run may be called once.
func (d *Devices) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("devices: Run called more than once")
	}
	defer close(d.stopped)
	if err := d.reload(ctx); err != nil {
		return nil // only ctx ends the retries: stopped before starting
	}
	// With ConnectRetry the token completes only once connected; the
	// connect and connection-lost handlers log the state.
	d.client.Connect()
	sweep := time.NewTicker(d.timeout)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
			d.sweep(hctx)
			cancel()
		case <-ctx.Done():
			d.mu.Lock()
			for _, p := range d.pending {
				p.timer.Stop()
			}
			d.mu.Unlock()
			d.client.Disconnect(250)
			return nil
		case in := <-d.responses:
			// An event that has started is finished even during shutdown,
			// so a stored outcome is not left without its notification.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
			d.handleResponse(hctx, in)
			cancel()
		case id := <-d.timeouts:
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
			d.handleTimeout(hctx, id)
			cancel()
		}
	}
}

// reload adds the commands still pending in the store to the pending map,
// each timing out at its original deadline but not sooner than
// restartGrace from now. While the store fails it retries with backoff;
// it returns an error only when ctx ends first.
func (d *Devices) reload(ctx context.Context) error {
	var cmds []model.Command
	err := d.retry.Retry(ctx, func(ctx context.Context) error {
		var err error
		cmds, err = d.store.PendingCommands(ctx)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		d.m.reloadErrs.Inc()
		d.log.Warn("devices: loading pending commands failed; retrying", "err", err, "attempt", attempt, "retry_in", wait)
	})
	if err != nil {
		return fmt.Errorf("devices: load pending commands: %w", err)
	}
	grace := min(restartGrace, d.timeout)
	now := d.now()
	n := 0
	d.mu.Lock()
	for _, c := range cmds {
		if _, ok := d.pending[c.ID]; ok {
			continue // issued by Send since this Run started
		}
		p := &pending{sensorID: c.SensorID, action: c.Action, user: c.IssuedBy, issued: c.IssuedAt}
		d.pending[c.ID] = p
		d.armLocked(c.ID, p, max(c.IssuedAt.Add(d.timeout).Sub(now), grace))
		n++
	}
	d.m.pending.Set(float64(len(d.pending)))
	d.mu.Unlock()
	if n > 0 {
		d.log.Info("devices: reloaded pending commands", "count", n)
	}
	return nil
}

func (d *Devices) onConnect(c mqtt.Client) {
	topic := d.prefix + "/+/responses"
	if d.cfg.ShareGroup != "" {
		topic = "$share/" + d.cfg.ShareGroup + "/" + topic
	}
	tok := c.Subscribe(topic, 1, d.onMessage)
	if !tok.WaitTimeout(10 * time.Second) {
		d.log.Error("devices: subscribe timed out; responses will not arrive until reconnect", "topic", topic)
		return
	}
	if err := tok.Error(); err != nil {
		d.log.Error("devices: subscribe failed; responses will not arrive until reconnect", "topic", topic, "err", err)
		return
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if code := st.Result()[topic]; code > 1 {
			d.log.Error("devices: broker refused subscription", "topic", topic, "code", code)
			return
		}
	}
	d.subbed.Store(true)
	// Redacted: the URL may carry the broker password.
	d.log.Info("devices: connected", "broker", redactedURL(d.cfg.BrokerURL), "client_id", d.cfg.ClientID)
}

// onMessage runs on paho's router goroutine and must not block: it hands
// the message to the worker, or drops it when the queue is full.
func (d *Devices) onMessage(_ mqtt.Client, msg mqtt.Message) {
	select {
	case d.responses <- inbound{msg: msg, at: d.now()}:
	default:
		d.m.rejected.WithLabelValues(reasonQueueFull).Inc()
		msg.Ack()
	}
}

// armLocked starts p's timeout timer. d.mu must be held.
func (d *Devices) armLocked(id string, p *pending, after time.Duration) {
	p.timer = time.AfterFunc(after, func() {
		select {
		case d.timeouts <- id:
		case <-d.stopped:
		}
	})
}

// lookup returns the pending entry of id, if any.
func (d *Devices) lookup(id string) (*pending, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pending[id]
	return p, ok
}

// forget removes id from the pending map once the store holds its final
// status. Safe to call for an id that is already gone.
func (d *Devices) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.pending[id]; ok {
		p.timer.Stop()
		delete(d.pending, id)
		d.m.pending.Set(float64(len(d.pending)))
	}
}

func (d *Devices) notFound(err error) bool { return errors.Is(err, model.ErrNotFound) }

// notify delivers one outcome. A failure is logged and counted here: the
// outcome is stored, so it is not retried.
func (d *Devices) notify(ctx context.Context, user string, ref json.RawMessage, r Response) {
	if err := d.notifier.SendReliable(ctx, user, MessageType, ref, r); err != nil {
		d.m.dropped.WithLabelValues(reasonNotifyError).Inc()
		d.log.Error("devices: notify command outcome", "command_id", r.CommandID, "user", user, "status", r.Status, "err", err)
	}
}

func latencyMS(from, to time.Time) float64 {
	return float64(to.Sub(from)) / float64(time.Millisecond)
}

// redactedURL is raw with any password replaced by "xxxxx".
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
