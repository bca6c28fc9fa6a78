package hub

import "encoding/json"

// Several instances behind one load balancer: a message produced on one
// instance must reach the recipients' connections on every instance.
//
// The instance where a message starts (the origin) stores it if it must be
// acknowledged (SendReliable: once, with its delivery ids), pushes it to
// its own connections, and hands the Relay the frame exactly as encoded,
// with its recipients. The transport (the MQTT backplane) carries the
// frame to the other instances, each of which calls Deliver: it pushes
// the frame to its own connections of those users, and never relays it
// again. So each connection gets each message once, whichever instance it
// is on, and a message is encoded once, at the origin.
//
// Readings do not go through here (the backplane orders committed batches
// by seq), nor does presence: every instance keeps the merged view of who
// is online and announces its transitions to its own connections only
// (SendToLocalUsers).

// Frame is one message for other instances' connections.
type Frame struct {
	// Type is the message type, for the metrics.
	Type string `json:"type"`
	// All: every authenticated connection (Broadcast); Users is then empty.
	All bool `json:"all,omitempty"`
	// Users are the recipients. Without a live connection on an instance
	// a user is simply skipped there.
	Users []string `json:"users,omitempty"`
	// Msg is the encoded message, the same for every recipient.
	Msg json.RawMessage `json:"msg,omitempty"`
	// Msgs, when set, holds one encoded message per user (Msgs[i] is
	// Users[i]'s): reliable deliveries carry each user's delivery id.
	Msgs []json.RawMessage `json:"msgs,omitempty"`
	// Key is the resume key of the message ("" if a resume cannot replay
	// it), so that a connection resuming on another instance does not get
	// it twice.
	Key string `json:"key,omitempty"`
}

// Relay carries frames to the other instances. Relay must not block: it
// runs on the request and ingest paths, sometimes while a room's batch of
// chat messages waits for its fan-out.
// A frame it cannot send is its to count and log; clients catch up by
// resume, over REST, or (reliable messages) on their next connection.
type Relay interface {
	Relay(f Frame)
}

// SetRelay makes every Broadcast, SendToUsers and SendReliable reach the
// other instances through r. It must be called before the first Serve and
// before anything sends; without it the hub serves one instance.
func (h *Hub) SetRelay(r Relay) { h.relay = r }

func (h *Hub) relayFrame(f Frame) {
	if h.relay != nil {
		h.relay.Relay(f)
	}
}

// Deliver pushes a frame relayed by another instance to this instance's
// connections of its recipients. It never blocks and never relays. Safe
// from any goroutine (the transport's receiver).
func (h *Hub) Deliver(f Frame) {
	if (f.Msgs == nil && len(f.Msg) == 0) || (f.Msgs != nil && (f.All || len(f.Msgs) != len(f.Users))) {
		// The transport decodes frames; such a frame is a bug there.
		h.m.relayDropped.Inc()
		h.relayLog.Do(func() { h.log.Error("relayed frame without a message for each user; dropped", "type", f.Type) })
		return
	}
	var queued float64
	switch {
	case f.All:
		for _, c := range h.snapshot() {
			if c.enqueueKeyed(f.Msg, f.Key) {
				queued++
			}
		}
	default:
		for i, u := range f.Users {
			msg := f.Msg
			if f.Msgs != nil {
				msg = f.Msgs[i]
			}
			for _, c := range h.userConns(u) {
				if c.enqueueKeyed(msg, f.Key) {
					queued++
				}
			}
		}
	}
	h.m.messagesOut.WithLabelValues(f.Type).Add(queued)
}
