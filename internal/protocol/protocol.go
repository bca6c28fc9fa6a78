// Package protocol is the vocabulary of the /ws protocol (docs/protocol.md):
// requests and replies as features see them, error and close codes, the
// message envelope, the wire time format and the types of resume. It does
// no I/O, so that every feature (rooms, alerts, devices, web) speaks the
// protocol without importing the WebSocket hub, and so that a backplane can
// carry its values between instances. Everything here is safe for
// concurrent use.
package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// Close codes the server sends.
const (
	CloseGoingAway    = 1001 // server shutting down
	CloseTooBig       = 1009 // frame over the read limit (sent by the websocket library)
	CloseAuthFailed   = 4001 // no, bad or expired auth
	CloseSlowConsumer = 4008 // send queue overflowed
	CloseTooMany      = 4029 // too many connections for the user or the address
)

// Error codes of {"type":"error"} replies.
const (
	CodeInvalidJSON = "invalid_json"
	CodeUnknownType = "unknown_type"
	CodeBadRequest  = "bad_request"
	CodeForbidden   = "forbidden"
	CodeRateLimited = "rate_limited"
	CodeNotFound    = "not_found"
	CodeConflict    = "conflict"
	CodeInternal    = "internal"
	CodeTooMany     = "too_many_connections"
)

// Messages every authenticated connection gets when the alert
// configuration changes (sent with the hub's Broadcast: not acked, not
// replayed; a client reloads rules and silences over REST after a
// reconnect). docs/protocol.md, "Rules and silences".
const (
	// TypeRulesChanged says the rules of one sensor were replaced; its
	// data is RulesChanged. Clients showing that sensor reload its rules.
	TypeRulesChanged = "rules_changed"
	// TypeSilence carries a silence that was created or ended early (a
	// model.Silence).
	TypeSilence = "silence"
)

// RulesChanged is the data of rules_changed.
type RulesChanged struct {
	SensorID  string `json:"sensor_id"`
	UpdatedBy string `json:"updated_by"`
	UpdatedAt string `json:"updated_at"` // FormatTime
}

// Error is a request failure reported to the client as {"type":"error"}.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// outEnvelope is the shape of server messages whose data is not yet encoded.
type outEnvelope struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data any             `json:"data,omitempty"`
}

// Encode returns the JSON of one server message. ref may be nil.
func Encode(typ string, id, ref json.RawMessage, data any) ([]byte, error) {
	b, err := json.Marshal(outEnvelope{Type: typ, ID: id, Ref: ref, Data: data})
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", typ, err)
	}
	return b, nil
}

// Request is one client request handed to a HandlerFunc.
type Request struct {
	User string
	Role model.Role
	Type string
	ID   json.RawMessage // the client's id, echoed as ref; may be nil
	Data json.RawMessage
}

// Reply is a HandlerFunc's answer; a zero Reply sends nothing.
type Reply struct {
	Type string
	Data any
}

// HandlerFunc serves one request type. Returning an *Error sends it to the
// client; any other error is logged and reported as "internal".
type HandlerFunc func(ctx context.Context, req Request) (Reply, error)

// Replayer reads what user missed on one stream after cursor (the
// stream's field of the resume request, as sent). It returns at most
// req.Max+1 messages, oldest first; more than req.Max fails the resume
// with too_many. A *Refusal error fails it with its reason; a *Error is a
// bad request; any other error is internal.
type Replayer func(ctx context.Context, req ReplayRequest) (Replay, error)

// ReplayRequest is one stream's part of a resume request.
type ReplayRequest struct {
	User    string
	Cursor  json.RawMessage
	Max     int           // messages the stream may replay
	MaxAge  time.Duration // how far back a time cursor may reach
	Now     time.Time
	Sensors SensorFilter // the connection's reading subscription
}

// SensorFilter is a connection's subscription: every sensor but Except
// when All, else only Only.
type SensorFilter struct {
	All    bool
	Only   []string
	Except []string
}

// Replay is what one stream replays.
type Replay struct {
	Msgs []Replayed
	// Groups, when not nil, makes the stream's entry in the resumed reply
	// an object counting the messages per group (every group listed,
	// zero included) instead of a number: rooms counts per room.
	Groups []string
}

// Replayed is one replayed message: sent as {"type":Type,"data":Data}
// without an id. Key is its resume key (model's ResumeKey methods);
// Group its group (see Replay.Groups).
type Replayed struct {
	Type  string
	Data  any
	Key   string
	Group string
}

// Refusal fails a resume: nothing is replayed and the client reloads
// over REST. Reason is too_old or too_many; Detail goes to the client.
type Refusal struct {
	Reason string
	Detail map[string]any
}

func (r *Refusal) Error() string { return "resume refused: " + r.Reason }

// Resume refusal reasons.
const (
	RefusedTooOld  = "too_old"
	RefusedTooMany = "too_many"
)

// TooMany is the refusal of a stream that would replay more than max.
func TooMany(max int) *Refusal {
	return &Refusal{Reason: RefusedTooMany, Detail: map[string]any{"max": max}}
}

// FormatTime formats t the way every protocol timestamp but a reading's is
// written (model.TimeFormat; readings use model.ReadingTimeFormat).
func FormatTime(t time.Time) string { return t.UTC().Format(model.TimeFormat) }

// PresenceListener learns when a user's first connection opens and last
// connection closes. Its methods are called in order with the hub's lock
// held: they must return quickly and must not call the hub.
type PresenceListener interface {
	Online(user string)
	Offline(user string)
}
