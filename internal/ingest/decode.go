package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/watchroom/watchroom/internal/model"
)

// Reasons a message is rejected. They are the values of the reason label of
// watchroom_readings_rejected_total, so they are part of the operator's
// interface: do not rename them.
const (
	ReasonOversize        = "oversize"
	ReasonEmpty           = "empty"
	ReasonBadTopic        = "bad_topic"
	ReasonInvalidSensorID = "invalid_sensor_id"
	ReasonInvalidMetric   = "invalid_metric"
	ReasonMalformedJSON   = "malformed_json"
	ReasonNonNumeric      = "non_numeric"
	ReasonNotFinite       = "not_finite"
	ReasonBadTS           = "bad_ts"
	ReasonFutureTS        = "future_ts"
	ReasonNoValues        = "no_values"
	ReasonTooManyValues   = "too_many_values"
	ReasonBadUnit         = "bad_unit"

	// ReasonRetained is not returned by Decode: the pipeline drops (and
	// acks) retained messages. The broker sends one per retained topic on
	// every (re)subscription; live deliveries never carry the flag in MQTT
	// 3.1.1, so a retained message is a stale copy, and one without "ts"
	// would be stored again, stamped now, after each reconnect.
	ReasonRetained = "retained"
)

// rejectReasons lists every reason, so that each label value of the rejection
// counter exists (at zero) from the start.
func rejectReasons() []string {
	return []string{
		ReasonOversize, ReasonEmpty, ReasonBadTopic, ReasonInvalidSensorID,
		ReasonInvalidMetric, ReasonMalformedJSON, ReasonNonNumeric, ReasonNotFinite,
		ReasonBadTS, ReasonFutureTS, ReasonNoValues, ReasonTooManyValues, ReasonBadUnit,
		ReasonRetained,
	}
}

// Limits of one message.
const (
	// MaxPayloadBytes bounds a payload; larger ones are rejected before any
	// parsing, so a hostile publisher cannot make the decoder do much work.
	MaxPayloadBytes = 64 << 10
	// MaxValuesPerMessage bounds the metrics of one message.
	MaxValuesPerMessage = 256
	// MaxUnitBytes bounds a unit string ("°C" is 3 bytes).
	MaxUnitBytes = 16
	// MaxFutureSkew is how far after the receive time a timestamp may be:
	// device clocks drift, but a reading from the future would sort after
	// every real one and stay "latest" until the clock catches up.
	MaxFutureSkew = 5 * time.Minute
)

// Timestamps outside [minTS, maxTS] are rejected as bad_ts. Readings before
// 2000 come from devices whose clock was never set (seconds since boot read
// as a Unix time); after 9999 RFC 3339 cannot even write them down.
var (
	minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTS = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// msThreshold separates Unix seconds from Unix milliseconds: 1e12 seconds is
// in the year 33658, 1e12 milliseconds is in September 2001.
const msThreshold = 1e12

// maxJSONDepth bounds nesting inside ignored JSON values; the payloads we
// accept are two levels deep, so this only stops pathological input.
const maxJSONDepth = 32

// RejectError is returned by Decode for a message that can never become a
// valid reading. Reason is one of the Reason constants.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string {
	return "ingest: rejected (" + e.Reason + "): " + e.Err.Error()
}

func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Decode turns one MQTT message into readings. The first topic segment is a
// prefix (normally "sensors") and is ignored. Accepted forms:
//
//	{prefix}/{sensor_id}/{metric}  23.5
//	{prefix}/{sensor_id}/{metric}  {"value": 23.5, "unit": "°C", "ts": ...}
//	{prefix}/{sensor_id}           {"ts": ..., "values": {"temperature": 23.5}, "units": {"temperature": "°C"}}
//	{prefix}/{sensor_id}           {"ts": ..., "temperature": 23.5, "humidity": 41}
//
// "ts" is optional: an RFC 3339 string, or a Unix time in seconds (fractions
// allowed) or, above 1e12, in milliseconds. Without it the reading is
// stamped now (the time the message was received). Timestamps are returned
// in UTC at PostgreSQL's precision, the microsecond (numbers are rounded,
// which undoes float64 error; strings and now are truncated), so what sinks
// see equals what the store keeps. Readings of one message are sorted by
// metric. Unknown keys of the object forms are ignored, except in the flat
// form where every key but "ts" is a metric.
//
// Every error is a *RejectError. Decode keeps no state and is safe for
// concurrent use; the readings do not alias payload.
func Decode(topic string, payload []byte, now time.Time) ([]model.Reading, error) {
	rs, rej := decode(topic, payload, now)
	if rej != nil {
		return nil, rej
	}
	return rs, nil
}

func decode(topic string, payload []byte, now time.Time) ([]model.Reading, *RejectError) {
	if len(payload) > MaxPayloadBytes {
		return nil, reject(ReasonOversize, "payload is %d bytes, limit %d", len(payload), MaxPayloadBytes)
	}
	sensor, metric, rej := splitTopic(topic)
	if rej != nil {
		return nil, rej
	}
	body := bytes.TrimSpace(payload)
	if len(body) == 0 {
		return nil, reject(ReasonEmpty, "empty payload on topic %q", clip(topic))
	}
	if metric != "" {
		if body[0] == '{' {
			return decodeSingleObject(sensor, metric, body, now)
		}
		return decodeBare(sensor, metric, body, now)
	}
	if body[0] != '{' {
		return nil, reject(ReasonMalformedJSON,
			"topic %q needs a JSON object payload; publish bare values to {prefix}/{sensor_id}/{metric}", clip(topic))
	}
	return decodeMultiObject(sensor, body, now)
}

// splitTopic returns the sensor id and, for three-segment topics, the metric
// ("" for two-segment topics).
func splitTopic(topic string) (sensor, metric string, rej *RejectError) {
	i := strings.IndexByte(topic, '/')
	if i <= 0 {
		return "", "", reject(ReasonBadTopic,
			"topic %q: want {prefix}/{sensor_id} or {prefix}/{sensor_id}/{metric}", clip(topic))
	}
	rest := topic[i+1:]
	sensor = rest
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		sensor, metric = rest[:j], rest[j+1:]
		if metric == "" || strings.IndexByte(metric, '/') >= 0 {
			return "", "", reject(ReasonBadTopic,
				"topic %q: want {prefix}/{sensor_id} or {prefix}/{sensor_id}/{metric}", clip(topic))
		}
	}
	if sensor == "" {
		return "", "", reject(ReasonBadTopic, "topic %q: empty sensor id segment", clip(topic))
	}
	if err := model.ValidID(sensor); err != nil {
		return "", "", reject(ReasonInvalidSensorID, "sensor id %q: %v", clip(sensor), err)
	}
	if metric != "" {
		if err := model.ValidID(metric); err != nil {
			return "", "", reject(ReasonInvalidMetric, "metric %q: %v", clip(metric), err)
		}
	}
	return sensor, metric, nil
}

// decodeBare decodes a payload that is just a number. strconv.ParseFloat
// also accepts "NaN", "Inf" and "1e999" (as ±Inf with ErrRange): those are
// numbers, but not storable ones, hence not_finite rather than non_numeric.
func decodeBare(sensor, metric string, body []byte, now time.Time) ([]model.Reading, *RejectError) {
	v, err := strconv.ParseFloat(string(body), 64)
	if err != nil && !(errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0)) {
		return nil, reject(ReasonNonNumeric,
			"payload %q is neither a number nor a JSON object", clip(string(body)))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, reject(ReasonNotFinite, "payload %q is not a finite number", clip(string(body)))
	}
	return []model.Reading{{SensorID: sensor, Metric: metric, Value: v, TS: stamp(now)}}, nil
}

// decodeSingleObject decodes {"value": 23.5, "unit": "°C", "ts": ...}.
// Syntax errors take precedence over the first semantic error, so a
// malformed payload is always counted as malformed_json.
func decodeSingleObject(sensor, metric string, body []byte, now time.Time) ([]model.Reading, *RejectError) {
	p := jsonParser{b: body}
	var (
		first             *RejectError // first semantic error
		value             float64
		hasValue, hasUnit bool
		hasTS             bool
		unit              string
		ts                time.Time
	)
	note := func(r *RejectError) {
		if first == nil {
			first = r
		}
	}
	if err := p.openObject(); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		ks, ke, esc, done, err := p.member(n)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		k, rej := keyString(body, ks, ke, esc)
		if rej != nil {
			return nil, rej
		}
		start := p.i
		kind, err := p.value(0)
		if err != nil {
			return nil, err
		}
		raw := body[start:p.i]
		switch k {
		case "value":
			if hasValue {
				note(reject(ReasonMalformedJSON, "duplicate key \"value\""))
				continue
			}
			hasValue = true
			v, rej := numberValue(kind, raw, "value")
			if rej != nil {
				note(rej)
				continue
			}
			value = v
		case "unit":
			if hasUnit {
				note(reject(ReasonMalformedJSON, "duplicate key \"unit\""))
				continue
			}
			hasUnit = true
			u, rej := unitValue(kind, raw, metric)
			if rej != nil {
				note(rej)
				continue
			}
			unit = u
		case "ts":
			if hasTS {
				note(reject(ReasonMalformedJSON, "duplicate key \"ts\""))
				continue
			}
			hasTS = true
			t, rej := tsValue(kind, raw, now)
			if rej != nil {
				note(rej)
				continue
			}
			ts = t
		}
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	if first != nil {
		return nil, first
	}
	if !hasValue {
		return nil, reject(ReasonNoValues, "object has no \"value\" key")
	}
	if !hasTS {
		ts = stamp(now)
	}
	return []model.Reading{{SensorID: sensor, Metric: metric, Value: value, Unit: unit, TS: ts}}, nil
}

// member is one top-level key of an object with the span of its value.
type member struct {
	key        string
	kind       jsonKind
	start, end int
}

// decodeMultiObject decodes the two object forms of {prefix}/{sensor_id}:
// nested ("values" present) and flat. The form is only known once every
// top-level key has been seen, so the keys are indexed first.
func decodeMultiObject(sensor string, body []byte, now time.Time) ([]model.Reading, *RejectError) {
	p := jsonParser{b: body}
	var buf [16]member
	members := buf[:0]
	var first *RejectError
	note := func(r *RejectError) {
		if first == nil {
			first = r
		}
	}
	if err := p.openObject(); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		ks, ke, esc, done, err := p.member(n)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		k, rej := keyString(body, ks, ke, esc)
		if rej != nil {
			return nil, rej
		}
		start := p.i
		kind, err := p.value(0)
		if err != nil {
			return nil, err
		}
		// Room for every metric plus the reserved keys; beyond that the
		// message is rejected anyway, so stop collecting but keep
		// validating the syntax.
		if len(members) <= MaxValuesPerMessage+2 {
			members = append(members, member{key: k, kind: kind, start: start, end: p.i})
		} else {
			note(reject(ReasonTooManyValues, "more than %d top-level keys", MaxValuesPerMessage+3))
		}
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	if first != nil {
		return nil, first
	}

	// Indexes into members of the reserved keys, -1 when absent. (Indexes
	// rather than pointers keep buf on the stack.)
	valuesI, unitsI, tsI := -1, -1, -1
	for i := range members {
		var slot *int
		switch members[i].key {
		case "values":
			slot = &valuesI
		case "units":
			slot = &unitsI
		case "ts":
			slot = &tsI
		default:
			continue
		}
		if *slot >= 0 {
			return nil, reject(ReasonMalformedJSON, "duplicate key %q", members[i].key)
		}
		*slot = i
	}

	var rs []model.Reading
	if valuesI >= 0 {
		valuesM := &members[valuesI]
		if valuesM.kind != kindObject {
			return nil, reject(ReasonMalformedJSON, "\"values\" is %s, want an object", valuesM.kind)
		}
		var rej *RejectError
		rs, rej = metricsFromObject(sensor, body[valuesM.start:valuesM.end])
		if rej != nil {
			return nil, rej
		}
	} else {
		unitsI = -1 // the flat form reserves only "ts": "units" is a metric here
		n := 0
		for i := range members {
			if members[i].key != "ts" {
				n++
			}
		}
		if n > MaxValuesPerMessage {
			return nil, reject(ReasonTooManyValues, "%d values, limit %d", n, MaxValuesPerMessage)
		}
		if n == 0 {
			return nil, reject(ReasonNoValues, "object has no metrics")
		}
		rs = make([]model.Reading, 0, n)
		for i := range members {
			m := &members[i]
			if m.key == "ts" {
				continue
			}
			r, rej := metricReading(sensor, m.key, m.kind, body[m.start:m.end])
			if rej != nil {
				return nil, rej
			}
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil, reject(ReasonNoValues, "object has no metrics")
	}
	slices.SortFunc(rs, func(a, b model.Reading) int { return strings.Compare(a.Metric, b.Metric) })
	for i := 1; i < len(rs); i++ {
		if rs[i].Metric == rs[i-1].Metric {
			return nil, reject(ReasonMalformedJSON, "duplicate metric %q", rs[i].Metric)
		}
	}
	if unitsI >= 0 {
		unitsM := &members[unitsI]
		if rej := applyUnits(rs, unitsM.kind, body[unitsM.start:unitsM.end]); rej != nil {
			return nil, rej
		}
	}
	ts := stamp(now)
	if tsI >= 0 {
		tsM := &members[tsI]
		t, rej := tsValue(tsM.kind, body[tsM.start:tsM.end], now)
		if rej != nil {
			return nil, rej
		}
		ts = t
	}
	for i := range rs {
		rs[i].TS = ts
	}
	return rs, nil
}

// metricsFromObject reads the "values" object. raw is already known to be
// valid JSON.
func metricsFromObject(sensor string, raw []byte) ([]model.Reading, *RejectError) {
	p := jsonParser{b: raw}
	if err := p.openObject(); err != nil {
		return nil, err
	}
	var rs []model.Reading
	for n := 0; ; n++ {
		ks, ke, esc, done, err := p.member(n)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if n >= MaxValuesPerMessage {
			return nil, reject(ReasonTooManyValues, "more than %d values", MaxValuesPerMessage)
		}
		k, rej := keyString(raw, ks, ke, esc)
		if rej != nil {
			return nil, rej
		}
		start := p.i
		kind, err := p.value(0)
		if err != nil {
			return nil, err
		}
		r, rej := metricReading(sensor, k, kind, raw[start:p.i])
		if rej != nil {
			return nil, rej
		}
		if rs == nil {
			rs = make([]model.Reading, 0, 4)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func metricReading(sensor, metric string, kind jsonKind, raw []byte) (model.Reading, *RejectError) {
	if err := model.ValidID(metric); err != nil {
		return model.Reading{}, reject(ReasonInvalidMetric, "metric %q: %v", clip(metric), err)
	}
	v, rej := numberValue(kind, raw, metric)
	if rej != nil {
		return model.Reading{}, rej
	}
	return model.Reading{SensorID: sensor, Metric: metric, Value: v}, nil
}

// applyUnits sets the units of rs (sorted by metric) from the "units"
// object. Every unit is checked, also those of metrics the message lacks.
func applyUnits(rs []model.Reading, kind jsonKind, raw []byte) *RejectError {
	if kind != kindObject {
		return reject(ReasonBadUnit, "\"units\" is %s, want an object", kind)
	}
	p := jsonParser{b: raw}
	if err := p.openObject(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		ks, ke, esc, done, err := p.member(n)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		k, rej := keyString(raw, ks, ke, esc)
		if rej != nil {
			return rej
		}
		start := p.i
		vkind, err := p.value(0)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(rs, k, func(r model.Reading, m string) int { return strings.Compare(r.Metric, m) })
		if !found {
			if _, rej := unitValue(vkind, raw[start:p.i], k); rej != nil {
				return rej
			}
			continue
		}
		u, rej := unitValue(vkind, raw[start:p.i], k)
		if rej != nil {
			return rej
		}
		rs[i].Unit = u
	}
}

func numberValue(kind jsonKind, raw []byte, what string) (float64, *RejectError) {
	if kind != kindNumber {
		return 0, reject(ReasonNonNumeric, "%q is %s, want a number", clip(what), kind)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		// The JSON grammar was checked, so the only failure left is a
		// magnitude beyond float64 (1e999).
		return 0, reject(ReasonNotFinite, "%q: %s is out of float64 range", clip(what), clip(string(raw)))
	}
	return v, nil
}

func unitValue(kind jsonKind, raw []byte, metric string) (string, *RejectError) {
	if kind != kindString {
		return "", reject(ReasonBadUnit, "unit of %q is %s, want a string", clip(metric), kind)
	}
	u, rej := stringValue(raw)
	if rej != nil {
		return "", rej
	}
	if len(u) > MaxUnitBytes {
		return "", reject(ReasonBadUnit, "unit of %q is %d bytes, limit %d", clip(metric), len(u), MaxUnitBytes)
	}
	if !utf8.ValidString(u) {
		return "", reject(ReasonBadUnit, "unit of %q is not valid UTF-8", clip(metric))
	}
	return u, nil
}

// tsValue reads a "ts" value: an RFC 3339 string or Unix seconds or
// milliseconds.
func tsValue(kind jsonKind, raw []byte, now time.Time) (time.Time, *RejectError) {
	var t time.Time
	switch kind {
	case kindString:
		s, rej := stringValue(raw)
		if rej != nil {
			return time.Time{}, rej
		}
		var err error
		t, err = time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, reject(ReasonBadTS, "ts %q is not an RFC 3339 time", clip(s))
		}
		if t.Before(minTS) || t.After(maxTS) {
			return time.Time{}, reject(ReasonBadTS, "ts %q is outside years 2000..9999", clip(s))
		}
		t = t.UTC().Truncate(time.Microsecond)
	case kindNumber:
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || v < 0 {
			return time.Time{}, reject(ReasonBadTS, "ts %s is not a non-negative Unix time", clip(string(raw)))
		}
		us := v * 1e6 // seconds to microseconds
		if v > msThreshold {
			us = v * 1e3
		}
		us = math.Round(us)
		if us < float64(minTS.UnixMicro()) || us > float64(maxTS.UnixMicro()) {
			return time.Time{}, reject(ReasonBadTS, "ts %s is outside years 2000..9999", clip(string(raw)))
		}
		t = time.UnixMicro(int64(us)).UTC()
	default:
		return time.Time{}, reject(ReasonBadTS, "ts is %s, want an RFC 3339 string or a Unix time", kind)
	}
	if t.After(now.Add(MaxFutureSkew)) {
		return time.Time{}, reject(ReasonFutureTS, "ts %s is more than %s after the receive time %s",
			t.Format(time.RFC3339Nano), MaxFutureSkew, now.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// keyString returns the object key doc[ks:ke] as a string. Keys with
// escapes are rare and are decoded by encoding/json so that its rules apply
// exactly.
func keyString(doc []byte, ks, ke int, esc bool) (string, *RejectError) {
	if !esc {
		// Reserved keys and common metric names come with every message;
		// returning constants for them saves an allocation each.
		switch k := doc[ks:ke]; string(k) {
		case "value":
			return "value", nil
		case "unit":
			return "unit", nil
		case "ts":
			return "ts", nil
		case "values":
			return "values", nil
		case "units":
			return "units", nil
		case "temperature":
			return "temperature", nil
		case "humidity":
			return "humidity", nil
		case "pressure":
			return "pressure", nil
		case "co2":
			return "co2", nil
		case "battery":
			return "battery", nil
		default:
			return string(k), nil
		}
	}
	return stringValue(doc[ks-1 : ke+1]) // with the quotes
}

// stringValue decodes a JSON string token (with its quotes).
func stringValue(raw []byte) (string, *RejectError) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", reject(ReasonMalformedJSON, "string %s: %v", clip(string(raw)), err)
	}
	return s, nil
}

// clip shortens s for an error message: topics and payloads come from
// untrusted publishers and may be long.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// stamp is the timestamp of a reading without "ts".
func stamp(now time.Time) time.Time { return now.UTC().Truncate(time.Microsecond) }
