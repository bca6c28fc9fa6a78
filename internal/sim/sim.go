package sim

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the zero values of Config.
const (
	DefaultSensors      = 10
	DefaultRate         = 1.0
	DefaultPrefix       = "sensors"
	DefaultQoS          = 1
	DefaultCommandDelay = 200 * time.Millisecond
)

// Limits of Config.
const (
	MaxSensors = 100_000
	MaxRate    = 1000.0 // readings per second per sensor
)

const (
	// tick is how often the run loop publishes the readings that fell due:
	// 100 small bursts a second keep the load smooth.
	tick = 10 * time.Millisecond
	// maxLag is how far behind schedule a sensor may fall (the broker
	// pushing back, a stalled machine) before its missed readings are
	// skipped instead of sent in one burst.
	maxLag = time.Second
	// maxOutstanding bounds publishes not yet confirmed by the client
	// library (PUBACK for QoS 1). When full the run loop waits: that is
	// the simulator's back-pressure.
	maxOutstanding = 1000
	// commandQueue is the buffer between the MQTT handler, which must not
	// block, and the run loop; maxPendingCommands bounds commands waiting
	// out their CommandDelay.
	commandQueue       = 256
	maxPendingCommands = 10_000
	// errorLogEvery limits how often repeated publish failures are logged.
	errorLogEvery = 10 * time.Second
	// drainTimeout is how long Run waits at shutdown for outstanding
	// publishes to be confirmed.
	drainTimeout = 2 * time.Second
)

// Config configures a Simulator. Zero values take the defaults above.
type Config struct {
	BrokerURL string // e.g. tcp://127.0.0.1:1883; required
	ClientID  string // default "watchroom-sim-<random>"
	Sensors   int    // number of sensors s-1..s-N
	Rate      float64
	// Anomalies is the probability per reading of a spike (a value far
	// outside the normal range); a dropout (30-90 s of silence) starts with
	// a twentieth of it. 0 disables both.
	Anomalies float64
	Prefix    string // topic prefix for readings: one topic level
	// QoS for readings. The zero value means DefaultQoS (1), so QoS 0
	// cannot be chosen. Command responses always use QoS 1.
	QoS  byte
	Seed int64 // 0: seeded from the clock
	// CommandDelay is how long a device takes to answer a command.
	// 0 means DefaultCommandDelay; negative means at once.
	CommandDelay time.Duration
	// Registerer, if set, receives the simulator's collectors.
	Registerer prometheus.Registerer
}

// Simulator publishes simulated sensor readings and answers commands as the
// devices would.
type Simulator struct {
	cfg       Config
	log       *slog.Logger
	brokerLog string // BrokerURL without credentials, for logs and errors

	// byID is built in New and never modified, so the MQTT handler may read
	// it from its goroutine; the sensors themselves belong to the run loop.
	byID     map[string]*sensor
	schedule schedule // run loop only

	commands chan pendingCommand // MQTT handler → run loop

	subscribed     chan struct{} // closed after the first command subscription
	subscribedOnce sync.Once

	running   atomic.Bool
	published atomic.Uint64
	metrics   metrics
}

type metrics struct {
	published prometheus.Counter
	dropped   *prometheus.CounterVec // readings not delivered, by reason
	commands  *prometheus.CounterVec // commands received, by outcome
}

// New checks cfg, applies defaults and builds the sensors. It does not
// connect; Run does.
func New(cfg Config, log *slog.Logger) (*Simulator, error) {
	if cfg.BrokerURL == "" {
		return nil, errors.New("sim: broker URL is required")
	}
	u, err := url.Parse(cfg.BrokerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("sim: broker URL must look like tcp://host:port")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("watchroom-sim-%08x", rand.Uint32())
	}
	if cfg.Sensors == 0 {
		cfg.Sensors = DefaultSensors
	}
	if cfg.Sensors < 0 || cfg.Sensors > MaxSensors {
		return nil, fmt.Errorf("sim: sensors %d out of range 1..%d", cfg.Sensors, MaxSensors)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if !(cfg.Rate > 0 && cfg.Rate <= MaxRate) {
		return nil, fmt.Errorf("sim: rate %g out of range (0, %g] readings/s per sensor", cfg.Rate, MaxRate)
	}
	if !(cfg.Anomalies >= 0 && cfg.Anomalies <= 1) {
		return nil, fmt.Errorf("sim: anomalies %g is not a probability between 0 and 1", cfg.Anomalies)
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	// One topic level: ingest takes the first level as the prefix and the
	// next as the sensor id.
	if strings.ContainsAny(cfg.Prefix, "/+#\x00") {
		return nil, fmt.Errorf("sim: topic prefix %q must be one topic level without wildcards", cfg.Prefix)
	}
	if cfg.QoS == 0 {
		cfg.QoS = DefaultQoS
	}
	if cfg.QoS > 2 {
		return nil, fmt.Errorf("sim: QoS %d is not 0, 1 or 2", cfg.QoS)
	}
	if cfg.CommandDelay == 0 {
		cfg.CommandDelay = DefaultCommandDelay
	}
	cfg.CommandDelay = max(cfg.CommandDelay, 0)
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	s := &Simulator{
		cfg:        cfg,
		log:        log,
		brokerLog:  u.Redacted(),
		byID:       make(map[string]*sensor, cfg.Sensors),
		schedule:   make(schedule, 0, cfg.Sensors),
		commands:   make(chan pendingCommand, commandQueue),
		subscribed: make(chan struct{}),
		metrics:    newMetrics(cfg.Registerer),
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	for num := 1; num <= cfg.Sensors; num++ {
		sn := newSensor(num, uint64(cfg.Seed), cfg.Prefix, interval)
		s.byID[sn.id] = sn
		heap.Push(&s.schedule, sn)
	}
	return s, nil
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_sim_readings_published_total",
			Help: "Readings the simulator published and the client library confirmed.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_sim_readings_dropped_total",
			Help: "Readings the simulator produced but did not deliver, by reason.",
		}, []string{"reason"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_sim_commands_total",
			Help: "Commands received by the simulated devices, by outcome.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.published, m.dropped, m.commands)
	return m
}

// Published returns how many readings have been published and confirmed so
// far (PUBACK at QoS 1, written at QoS 0). A combined-form message counts
// once per metric it carries. Safe from any goroutine.
func (s *Simulator) Published() uint64 { return s.published.Load() }

// Run connects to the broker and publishes readings until ctx is done,
// answering commands meanwhile. It returns an error only if the first
// connection fails; later connection losses are retried, and readings due
// while disconnected are dropped (and counted). It may be called once.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sim: Run called twice")
	}
	client := paho.NewClient(s.clientOptions())
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		client.Disconnect(0)
		return nil
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("sim: connect to %s: %w", s.brokerLog, err)
	}
	s.log.Info("simulator running", "broker", s.brokerLog, "client_id", s.cfg.ClientID,
		"sensors", s.cfg.Sensors, "rate", s.cfg.Rate, "anomalies", s.cfg.Anomalies, "qos", s.cfg.QoS)

	out := &publisher{client: client, pending: make(chan outstanding, maxOutstanding)}
	reaped := make(chan struct{})
	abort := make(chan struct{})
	go s.reap(out.pending, abort, reaped)

	s.spread(time.Now())
	s.loop(ctx, out)

	close(out.pending)
	select {
	case <-reaped:
	case <-time.After(drainTimeout):
		close(abort)
		<-reaped
	}
	client.Disconnect(250)
	s.log.Info("simulator stopped", "readings_published", s.Published())
	return nil
}

func (s *Simulator) clientOptions() *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(s.cfg.BrokerURL).
		SetClientID(s.cfg.ClientID).
		// A device that was away does not expect old commands: the
		// backend times them out. A clean session also leaves nothing
		// behind in the broker for random client ids.
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("broker connection lost; readings are dropped until it is back", "error", err)
		})
}

// onConnect (re)subscribes to commands. paho calls it in its own goroutine
// after every connection, so waiting here is fine; a clean session has no
// subscriptions left from before.
func (s *Simulator) onConnect(c paho.Client) {
	tok := c.Subscribe(commandFilter, 1, s.onCommand)
	if !tok.WaitTimeout(10 * time.Second) {
		s.log.Warn("subscribing to commands timed out; devices will not answer", "topic", commandFilter)
		return
	}
	if err := tok.Error(); err != nil {
		s.log.Error("subscribing to commands failed; devices will not answer", "topic", commandFilter, "error", err)
		return
	}
	s.log.Info("connected to broker", "broker", s.brokerLog, "commands", commandFilter)
	s.subscribedOnce.Do(func() { close(s.subscribed) })
}

// onCommand runs in paho's goroutine and must not block: it checks the
// command and hands it to the run loop.
func (s *Simulator) onCommand(_ paho.Client, m paho.Message) {
	id, ok := sensorFromTopic(m.Topic())
	if !ok {
		return
	}
	sn, ok := s.byID[id]
	if !ok {
		// Another simulator's device, or none at all: stay silent so the
		// backend's timeout path can be exercised.
		s.metrics.commands.WithLabelValues("unknown_sensor").Inc()
		s.log.Debug("ignoring command for a sensor this simulator does not own", "sensor", id)
		return
	}
	c, err := decodeCommand(m.Payload())
	if err != nil {
		s.metrics.commands.WithLabelValues("malformed").Inc()
		s.log.Warn("ignoring malformed command", "sensor", id, "error", err)
		return
	}
	select {
	case s.commands <- pendingCommand{sensor: sn, cmd: c, due: time.Now().Add(s.cfg.CommandDelay)}:
	default:
		s.metrics.commands.WithLabelValues("queue_full").Inc()
		s.log.Warn("command queue full; command ignored", "sensor", id, "command_id", c.ID)
	}
}

// outstanding is a publish whose confirmation the reaper waits for.
type outstanding struct {
	tok      paho.Token
	readings int // 0 for a command response
	topic    string
}

// publisher hands messages to paho and their tokens to the reaper. Run
// loop only.
type publisher struct {
	client  paho.Client
	pending chan outstanding
}

// publish returns false if ctx ended while waiting for room among the
// outstanding publishes.
func (p *publisher) publish(ctx context.Context, topic string, qos byte, payload []byte, readings int) bool {
	tok := p.client.Publish(topic, qos, false, payload)
	select {
	case p.pending <- outstanding{tok: tok, readings: readings, topic: topic}:
		return true
	case <-ctx.Done():
		return false
	}
}

// reap waits for publish tokens in order (the broker acknowledges QoS 1 in
// order, so waiting on the oldest costs nothing) and counts the outcome.
// It returns when pending is closed and drained, or abort is closed.
func (s *Simulator) reap(pending <-chan outstanding, abort <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var (
		failed  int // failures not yet logged
		lastLog time.Time
	)
	for o := range pending {
		select {
		case <-o.tok.Done():
		case <-abort:
			return
		}
		err := o.tok.Error()
		switch {
		case err == nil:
			if o.readings > 0 {
				s.published.Add(uint64(o.readings))
				s.metrics.published.Add(float64(o.readings))
			}
			continue
		case o.readings == 0:
			s.log.Warn("publishing a command response failed", "topic", o.topic, "error", err)
			continue
		}
		s.metrics.dropped.WithLabelValues("publish_error").Add(float64(o.readings))
		failed++
		if time.Since(lastLog) >= errorLogEvery {
			s.log.Warn("publishing readings failed", "error", err, "failures", failed)
			failed, lastLog = 0, time.Now()
		}
	}
}

// loop is the run loop: it owns the sensors, the schedule and the commands
// waiting out their delay.
func (s *Simulator) loop(ctx context.Context, out *publisher) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var waiting []pendingCommand
	for {
		select {
		case <-ctx.Done():
			if len(waiting) > 0 {
				s.log.Debug("stopping with unanswered commands", "count", len(waiting))
			}
			return
		case pc := <-s.commands:
			if len(waiting) >= maxPendingCommands {
				s.metrics.commands.WithLabelValues("queue_full").Inc()
				s.log.Warn("too many commands waiting; command ignored", "sensor", pc.sensor.id, "command_id", pc.cmd.ID)
				continue
			}
			waiting = append(waiting, pc)
		case <-t.C:
			waiting = s.answer(ctx, out, waiting, time.Now())
			s.publishDue(ctx, out, time.Now())
		}
	}
}

// answer executes the commands whose delay has passed and publishes the
// responses; it returns the commands still waiting.
func (s *Simulator) answer(ctx context.Context, out *publisher, waiting []pendingCommand, now time.Time) []pendingCommand {
	kept := waiting[:0]
	for _, pc := range waiting {
		if now.Before(pc.due) {
			kept = append(kept, pc)
			continue
		}
		resp := execute(pc.sensor, pc.cmd, now, s.reschedule)
		s.metrics.commands.WithLabelValues(resp.Status).Inc()
		s.log.Info("device answered command", "sensor", pc.sensor.id, "command_id", resp.ID,
			"action", pc.cmd.Action, "status", resp.Status, "message", resp.Message)
		payload, err := json.Marshal(resp)
		if err != nil {
			s.log.Error("encoding command response", "error", err)
			continue
		}
		out.publish(ctx, topicDevices+pc.sensor.id+suffixResponses, 1, payload, 0)
	}
	clear(waiting[len(kept):])
	return kept
}

// spread staggers the sensors' first readings evenly over one interval so
// that N sensors at rate R make a steady N*R messages a second rather than
// N-message bursts.
func (s *Simulator) spread(start time.Time) {
	n := len(s.schedule)
	for _, sn := range s.schedule {
		sn.due = start.Add(time.Duration(float64(sn.interval) * float64(sn.num-1) / float64(n)))
	}
	heap.Init(&s.schedule)
}

func (s *Simulator) reschedule(sn *sensor) { heap.Fix(&s.schedule, sn.heapIndex) }

// publishDue publishes a reading for every sensor due by now.
func (s *Simulator) publishDue(ctx context.Context, out *publisher, now time.Time) {
	connected := out.client.IsConnectionOpen()
	for len(s.schedule) > 0 && !s.schedule[0].due.After(now) {
		if ctx.Err() != nil {
			return
		}
		sn := s.schedule[0]
		if lag := now.Sub(sn.due); lag > maxLag {
			s.metrics.dropped.WithLabelValues("behind_schedule").Add(math.Floor(float64(lag) / float64(sn.interval)))
			sn.due = now
		}
		sn.due = sn.due.Add(sn.interval)
		heap.Fix(&s.schedule, 0)

		r, ok := sn.read(time.Now(), s.cfg.Anomalies)
		if !ok {
			continue
		}
		if !connected {
			s.metrics.dropped.WithLabelValues("not_connected").Add(float64(len(r.values)))
			continue
		}
		payload, err := sn.encode(r)
		if err != nil {
			s.log.Error("encoding reading", "sensor", sn.id, "error", err)
			continue
		}
		if !out.publish(ctx, sn.topic, s.cfg.QoS, payload, len(r.values)) {
			return
		}
	}
}
