package backplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Events: small messages between instances besides the readings (the
// hub's relayed frames, presence, room changes), each of a kind that one
// local handler takes.
//
// Topic watchroom/v1/events/<kind>, QoS 1, not retained, one JSON object
// per message:
//
//	{"v":1,"origin":"web-1","body":{...}}
//
// on the same client and connection as the readings, subscribed without
// sharing (every instance gets every event) and with a clean session:
// what is published while an instance is away is not kept for it. Events
// are published in the order Publish was called, and an instance gets
// those of one origin in that order (QoS 1 through one broker). An event
// published while the connection is down is dropped (counted): its
// receivers catch up as each kind says (clients by resume or REST,
// presence by the full set published at each connection: OnConnect).
//
// A will (SetWill) is published by the broker for this instance when its
// connection dies without a DISCONNECT: presence uses it to say at once
// that this instance's users are gone.

// EventsTopic is the prefix of the events' topics.
const EventsTopic = "watchroom/v1/events/"

// eventsWire is the "v" of an event.
const eventsWire = 1

type wireEvent struct {
	V      int    `json:"v"`
	Origin string `json:"origin"`
	// N numbers the origin's events from 1 in Publish order, per run of
	// the origin (0: not numbered, the will). A receiver that sees N jump
	// counts the events between as missed.
	N    uint64          `json:"n,omitempty"`
	Body json.RawMessage `json:"body"`
}

// events is the Backplane's part for events. handlers, will and
// onConnect are set before Run and only read after.
type events struct {
	handlers  map[string]func(origin string, body []byte) error
	onConnect []func()
	will      *outEvent
	out       chan outEvent // to the events publisher, in Publish order

	dropped  *prometheus.CounterVec
	received prometheus.Counter
	missed   prometheus.Counter
	dropLog  rate.Sometimes
	mu       sync.Mutex // orders Publish's numbering, marshal and queue
	n        uint64     // the last N published; under mu
	// lastN is the last N received from each origin; paho's router
	// goroutine only (receiveEvent).
	lastN map[string]uint64
}

type outEvent struct {
	topic   string
	payload []byte
}

// Reasons of watchroom_backplane_events_dropped_total.
const (
	eventQueueFull    = "queue_full"    // Publish found the publish queue full
	eventDisconnected = "disconnected"  // held while disconnected, beyond heldMax: the oldest go
	eventPublishError = "publish_error" // the broker did not confirm it
	eventShutdown     = "shutdown"      // still queued when Run stopped
	eventMalformed    = "malformed"     // a received event did not decode
	eventUnknownKind  = "unknown_kind"  // a received event of a kind nobody handles here
)

func newEvents(queue int, reg prometheus.Registerer) *events {
	e := &events{
		handlers: map[string]func(string, []byte) error{},
		out:      make(chan outEvent, queue),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_backplane_events_dropped_total",
			Help: "Events between instances (relayed messages, presence, room changes) not sent or not used, by reason.",
		}, []string{"reason"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_events_received_total",
			Help: "Events received from other instances.",
		}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_events_missed_total",
			Help: "Events of other instances this instance never received (a jump in an origin's numbering): sent while it or the sender was cut off from the broker, or lost by the broker.",
		}),
		dropLog: rate.Sometimes{First: 1, Interval: time.Second},
		lastN:   map[string]uint64{},
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(e.dropped, e.received, e.missed)
	return e
}

func validKind(kind string) error {
	if kind == "" || strings.ContainsAny(kind, "/+#") {
		return fmt.Errorf("backplane: event kind %q must be one topic level without wildcards", kind)
	}
	return nil
}

// Handle makes fn take the events of kind from other instances. fn runs on
// the MQTT client's receiving goroutine, in arrival order: it must not
// block. An error from fn (a body it cannot use) is counted as malformed
// and logged at most once a second. Call it before Run.
func (b *Backplane) Handle(kind string, fn func(origin string, body []byte) error) {
	if err := validKind(kind); err != nil {
		panic(err)
	}
	b.ev.handlers[kind] = fn
}

// OnConnect makes fn run each time the connection is made and
// subscribed, on a goroutine of the client's. Call it before Run.
func (b *Backplane) OnConnect(fn func()) { b.ev.onConnect = append(b.ev.onConnect, fn) }

// SetWill registers body, an event of kind, as this instance's will.
// Call it before Run.
func (b *Backplane) SetWill(kind string, body []byte) error {
	ev, err := b.encodeEvent(kind, 0, body)
	if err != nil {
		return err
	}
	b.ev.will = &ev
	return nil
}

func (b *Backplane) encodeEvent(kind string, n uint64, body []byte) (outEvent, error) {
	if err := validKind(kind); err != nil {
		return outEvent{}, err
	}
	payload, err := json.Marshal(wireEvent{V: eventsWire, Origin: b.cfg.Origin, N: n, Body: body})
	if err != nil {
		return outEvent{}, fmt.Errorf("backplane: encode %s event: %w", kind, err)
	}
	return outEvent{topic: EventsTopic + kind, payload: payload}, nil
}

// Publish sends body, valid JSON, as an event of kind to the other
// instances. It never blocks: an event that finds the queue full is
// dropped (counted, logged at most once a second). Safe from any
// goroutine; events are published in the order of the calls.
func (b *Backplane) Publish(kind string, body []byte) {
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
	ev, err := b.encodeEvent(kind, b.ev.n+1, body)
	if err != nil {
		b.dropEvent(eventMalformed, err)
		return
	}
	// Numbered once queued or dropped here: a drop counted by the sender
	// shows as missed at the receivers too.
	b.ev.n++
	select {
	case b.ev.out <- ev:
	default:
		b.dropEvent(eventQueueFull, nil)
	}
}

func (b *Backplane) dropEvent(reason string, err error) {
	b.ev.dropped.WithLabelValues(reason).Inc()
	b.ev.dropLog.Do(func() {
		b.log.Warn("backplane: event dropped (at most one line per second)", "reason", reason, "err", err)
	})
}

// receiveEvent runs on paho's router goroutine.
func (b *Backplane) receiveEvent(msg mqtt.Message) {
	kind := strings.TrimPrefix(msg.Topic(), EventsTopic)
	var w wireEvent
	if err := json.Unmarshal(msg.Payload(), &w); err != nil || w.V != eventsWire || w.Origin == "" {
		if err == nil {
			err = errors.New("not a version 1 event with an origin")
		}
		b.dropEvent(eventMalformed, err)
		return
	}
	if w.Origin == b.cfg.Origin {
		return // our own
	}
	b.noteN(w.Origin, w.N)
	fn := b.ev.handlers[kind]
	if fn == nil {
		b.dropEvent(eventUnknownKind, fmt.Errorf("kind %q", kind))
		return
	}
	b.ev.received.Inc()
	if err := fn(w.Origin, w.Body); err != nil {
		b.dropEvent(eventMalformed, fmt.Errorf("%s event from %s: %w", kind, w.Origin, err))
	}
}

// Events held while the connection is down.
const (
	// heldMax bounds them; beyond it the oldest are dropped (counted,
	// reason disconnected).
	heldMax = 10_000
	// heldRetry is how often held events are tried when no new event
	// comes to carry them.
	heldRetry = 250 * time.Millisecond
)

// noteN counts the events of origin skipped before its event n: a jump
// in its numbering. A number not above the last one is a new run of that
// instance (it restarted and numbers from 1 again). Router goroutine only.
func (b *Backplane) noteN(origin string, n uint64) {
	if n == 0 {
		return
	}
	last := b.ev.lastN[origin]
	b.ev.lastN[origin] = n
	if last == 0 || n <= last || n == last+1 {
		return
	}
	b.ev.missed.Add(float64(n - last - 1))
	b.ev.dropLog.Do(func() {
		b.log.Warn("backplane: events of another instance never arrived (at most one line per second); its relayed messages reach clients here when they reconnect",
			"origin", origin, "missed", n-last-1)
	})
}

// publishEvents publishes the queued events in order until done is
// closed. An event is handed to the client only on an open connection
// (one queued by paho while reconnecting would be lost with its clean
// session): while the connection is down events are held here, in
// order, and published first once it is open again, before anything
// newer, the full state the reconnect publishes (OnConnect) included,
// which then corrects whatever presence the held ones reported. So a
// message relayed during a broker restart reaches the other instances'
// clients late instead of never.
func (b *Backplane) publishEvents(client mqtt.Client, done <-chan struct{}) {
	var held []outEvent
	retry := time.NewTicker(heldRetry)
	defer retry.Stop()
	publish := func(ev outEvent) {
		tok := client.Publish(ev.topic, 1, false, ev.payload)
		// The next is published without waiting for this PUBACK
		// (order is kept by the connection); a failure is counted.
		go func() {
			if !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
				b.dropEvent(eventPublishError, tok.Error())
			}
		}()
	}
	// flush publishes what is held if the connection is open, and
	// reports whether it was.
	flush := func() bool {
		if !client.IsConnectionOpen() || !b.subscribed.Load() {
			return false
		}
		for _, ev := range held {
			publish(ev)
		}
		clear(held)
		held = held[:0]
		return true
	}
	for {
		select {
		case <-done:
			if len(held) > 0 {
				b.ev.dropped.WithLabelValues(eventShutdown).Add(float64(len(held)))
			}
			return
		case <-retry.C:
			if len(held) > 0 {
				flush()
			}
		case ev := <-b.ev.out:
			if flush() {
				publish(ev)
				continue
			}
			// Not subscribed yet (OnConnect not run): its state event
			// must follow what is held.
			if len(held) == heldMax {
				b.dropEvent(eventDisconnected, nil)
				held = append(held[:0], held[1:]...)
			}
			held = append(held, ev)
		}
	}
}
