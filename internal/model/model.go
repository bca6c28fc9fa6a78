package model

import (
	"encoding/json"
	"time"
)

// Reading is one measured value of one metric of one sensor.
type Reading struct {
	SensorID string    `json:"sensor_id"`
	Metric   string    `json:"metric"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit,omitempty"`
	TS       time.Time `json:"ts"`

	// Seq is the commit order of the batch that stored the reading (0
	// before it is stored): the cursor a client resumes readings after.
	Seq int64 `json:"-"`

	// Receipt marks a reading that carried no timestamp and was stamped
	// with the time it was received. Such a stamp is ours, not the
	// device's, so a reading with it is never a duplicate by key: a store
	// that finds its key taken moves it to a free microsecond instead of
	// dropping it. Not serialized.
	Receipt bool `json:"-"`
}

// InsertResult is what a store made of a batch of readings.
type InsertResult struct {
	// Seq is the commit order the batch was stored under (see
	// Reading.Seq), also when nothing in it was new.
	Seq int64
	// Fresh are the readings inserted, exactly those, in input order;
	// receipt-stamped readings that were moved carry their new TS.
	Fresh []Reading
	// Duplicates counts readings whose key was already stored with the
	// same value (redeliveries, repeats within the batch): not stored again.
	Duplicates int
	// Conflicts are readings whose key was already stored with a
	// different value: not stored, the first committed value stays.
	Conflicts []Conflict
	// Restamped counts the receipt-stamped readings of Fresh that were
	// moved to a later microsecond because their key was taken.
	Restamped int
	// PastRetention are readings not stored because they are older than
	// RawHorizon, in a minute or hour whose raw readings retention has
	// removed: a repeat could not be told from a new reading there, and
	// the rollups would count it twice.
	PastRetention []Reading
	// RawHorizon is the store's raw horizon when PastRetention is not
	// empty: every raw reading removed by retention is older.
	RawHorizon time.Time
}

// Conflict is a reading refused because its key holds another value.
type Conflict struct {
	Reading Reading // as offered
	Stored  float64 // the value that stays
}

// Sensor is the latest known state of one sensor metric.
type Sensor struct {
	ID        string    `json:"sensor_id"`
	Metric    string    `json:"metric"`
	Unit      string    `json:"unit,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	LastValue float64   `json:"last_value"`
}

// Bucket is one downsampled interval of readings.
type Bucket struct {
	TS    time.Time `json:"ts"`
	Min   float64   `json:"min"`
	Avg   float64   `json:"avg"`
	Max   float64   `json:"max"`
	Count int64     `json:"count"`
}

// User is an account that may log in.
type User struct {
	Name         string    `json:"user"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// TokenState is what decides whether a user's token is still valid.
type TokenState struct {
	Active  bool  // the user exists and is not disabled
	Version int64 // the user's token version; tokens of another are revoked
	Revoked bool  // this one token was revoked (logout)
}

// SessionEvent records a revocation: of one token (JTI set) or of all the
// user's tokens.
type SessionEvent struct {
	ID   int64
	User string
	JTI  string
}

// Command statuses.
const (
	CommandPending = "pending"
	CommandSuccess = "success"
	CommandError   = "error"
	CommandTimeout = "timeout"
)

// Command is one command sent to a device, with its outcome once known.
type Command struct {
	ID          string          `json:"command_id"`
	SensorID    string          `json:"sensor_id"`
	Action      string          `json:"action"`
	Params      json.RawMessage `json:"params"`
	IssuedBy    string          `json:"issued_by"`
	IssuedAt    time.Time       `json:"issued_at"`
	Status      string          `json:"status"`
	Message     string          `json:"message,omitempty"`
	RespondedAt *time.Time      `json:"responded_at,omitempty"`
	LatencyMS   *float64        `json:"latency_ms,omitempty"`
}

// Delivery is a server message that a user must acknowledge. Until it is
// acknowledged it is delivered again on every new connection of that user.
type Delivery struct {
	ID   int64           // server message id, the top-level "id" on the wire
	User string          // recipient
	Type string          // message type, e.g. "command_response"
	Ref  json.RawMessage // the request id this answers, if any
	Data json.RawMessage // the message's "data"
}
