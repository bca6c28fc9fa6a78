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
	V      int             `json:"v"`
	Origin string          `json:"origin"`
	Body   json.RawMessage `json:"body"`
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
	dropLog  rate.Sometimes
	mu       sync.Mutex // orders Publish's marshal-and-queue
}

type outEvent struct {
	topic   string
	payload []byte
}

// Reasons of watchroom_backplane_events_dropped_total.
const (
	eventQueueFull    = "queue_full"    // Publish found the publish queue full
	eventDisconnected = "disconnected"  // not connected when it was its turn
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
		dropLog: rate.Sometimes{First: 1, Interval: time.Second},
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(e.dropped, e.received)
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
	ev, err := b.encodeEvent(kind, body)
	if err != nil {
		return err
	}
	b.ev.will = &ev
	return nil
}

func (b *Backplane) encodeEvent(kind string, body []byte) (outEvent, error) {
	if err := validKind(kind); err != nil {
		return outEvent{}, err
	}
	payload, err := json.Marshal(wireEvent{V: eventsWire, Origin: b.cfg.Origin, Body: body})
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
	ev, err := b.encodeEvent(kind, body)
	if err != nil {
		b.dropEvent(eventMalformed, err)
		return
	}
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
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

// publishEvents publishes the queued events in order until done is
// closed. An event is handed to the client only on an open connection:
// one queued by paho while reconnecting would arrive after the full state
// the reconnect publishes (OnConnect), out of order.
func (b *Backplane) publishEvents(client mqtt.Client, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case ev := <-b.ev.out:
			if !client.IsConnectionOpen() {
				b.dropEvent(eventDisconnected, nil)
				continue
			}
			tok := client.Publish(ev.topic, 1, false, ev.payload)
			// The next is published without waiting for this PUBACK
			// (order is kept by the connection); a failure is counted.
			go func() {
				if !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
					b.dropEvent(eventPublishError, tok.Error())
				}
			}()
		}
	}
}
