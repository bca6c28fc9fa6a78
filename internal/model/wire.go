package model

import (
	"encoding/json"
	"strconv"
)

// The two timestamp forms of the protocol (/ws and REST alike; see
// docs/protocol.md): every time is RFC 3339 in UTC; a reading's own times
// (its ts, a sensor's first and last seen, a gap's bounds) have
// microseconds, all others milliseconds.

// TimeFormat is how every time but a reading's is written: milliseconds,
// the precision the server stamps its own events with.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ReadingTimeFormat is how a reading's ts is written on the wire (/ws and
// REST): RFC 3339 in UTC with exactly six fraction digits. The ts is part
// of the reading's key (sensor, metric, ts) and is stored to the
// microsecond; readings stamped at receipt can be a microsecond apart, so
// a coarser form would make two readings look like one.
const ReadingTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON writes the reading with ts in ReadingTimeFormat, and its seq
// once stored.
func (r Reading) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		SensorID string  `json:"sensor_id"`
		Metric   string  `json:"metric"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit,omitempty"`
		TS       string  `json:"ts"`
		Seq      int64   `json:"seq,omitempty"`
	}{r.SensorID, r.Metric, r.Value, r.Unit, r.TS.UTC().Format(ReadingTimeFormat), r.Seq})
}

// Resume keys identify one message of a stream that a client can resume
// (docs/protocol.md, "Resuming after a reconnect"): the same key on a
// replayed and a live copy means the same message.

// ResumeKey is the reading's key: sensor, metric and ts to the microsecond.
func (r Reading) ResumeKey() string {
	return "r\x00" + r.SensorID + "\x00" + r.Metric + "\x00" + strconv.FormatInt(r.TS.UnixMicro(), 10)
}

// ResumeKey is the chat message's key: its room and id.
func (m ChatMessage) ResumeKey() string {
	return "c\x00" + m.Room + "\x00" + strconv.FormatInt(m.ID, 10)
}

// ResumeKey is the direct message's key: its id.
func (m DirectMessage) ResumeKey() string { return "d\x00" + strconv.FormatInt(m.ID, 10) }

// ResumeKey is the alert change's key: its event id.
func (a Alert) ResumeKey() string { return "a\x00" + strconv.FormatInt(a.EventID, 10) }

// MarshalJSON writes the sensor's first and last seen as reading times.
func (s Sensor) MarshalJSON() ([]byte, error) {
	type plain Sensor
	return json.Marshal(struct {
		plain
		FirstSeen string `json:"first_seen"`
		LastSeen  string `json:"last_seen"`
	}{plain(s), s.FirstSeen.UTC().Format(ReadingTimeFormat), s.LastSeen.UTC().Format(ReadingTimeFormat)})
}

// MarshalJSON writes the bucket's start as a reading time.
func (b Bucket) MarshalJSON() ([]byte, error) {
	type plain Bucket
	return json.Marshal(struct {
		plain
		TS string `json:"ts"`
	}{plain(b), b.TS.UTC().Format(ReadingTimeFormat)})
}

// MarshalJSON writes the command's times in TimeFormat.
func (c Command) MarshalJSON() ([]byte, error) {
	type plain Command
	var responded *string
	if c.RespondedAt != nil {
		s := c.RespondedAt.UTC().Format(TimeFormat)
		responded = &s
	}
	return json.Marshal(struct {
		plain
		IssuedAt    string  `json:"issued_at"`
		RespondedAt *string `json:"responded_at,omitempty"`
	}{plain(c), c.IssuedAt.UTC().Format(TimeFormat), responded})
}
