package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

	// Admission reasons, not returned by Decode either (see Admission):
	// ReasonUnregistered, in registered mode, a sensor that is not a
	// registered device; ReasonLookupLimited, in registered mode, an id
	// the registry could not be asked about because unknown ids were being
	// looked up faster than registryLookupRate; ReasonNewSeriesLimited, a
	// message creating series faster than Admission.NewSeriesRate allows.
	ReasonUnregistered     = "unregistered"
	ReasonLookupLimited    = "lookup_limited"
	ReasonNewSeriesLimited = "new_series_limited"
)

// rejectReasons lists every reason, so that each label value of the rejection
// counter exists (at zero) from the start.
func rejectReasons() []string {
	return []string{
		ReasonOversize, ReasonEmpty, ReasonBadTopic, ReasonInvalidSensorID,
		ReasonInvalidMetric, ReasonMalformedJSON, ReasonNonNumeric, ReasonNotFinite,
		ReasonBadTS, ReasonFutureTS, ReasonNoValues, ReasonTooManyValues, ReasonBadUnit,
		ReasonRetained, ReasonUnregistered, ReasonLookupLimited, ReasonNewSeriesLimited,
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
// stamped now (the time the message was received) and marked Receipt; the
// pipeline then makes such stamps distinct per series (see stamper). Timestamps are returned
// in UTC at PostgreSQL's precision, the microsecond (numbers are rounded,
// which undoes float64 error; strings and now are truncated), so what sinks
// see equals what the store keeps. Readings of one message are sorted by
// metric. Unknown keys of the object forms are ignored, except in the flat
// form where every key but "ts" is a metric. Keys match exactly; of a key
// given twice the last one counts (encoding/json's rule).
//
// Every error is a *RejectError. Decode keeps no state and is safe for
// concurrent use; the readings do not alias payload.
func Decode(topic string, payload []byte, now time.Time) ([]model.Reading, error) {
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
	if body[0] != '{' {
		if metric == "" {
			return nil, reject(ReasonMalformedJSON,
				"topic %q needs a JSON object payload; publish bare values to {prefix}/{sensor_id}/{metric}", clip(topic))
		}
		return decodeBare(sensor, metric, body, now)
	}
	// Unmarshal checks the whole payload before storing anything, so a
	// malformed payload is always malformed_json, whatever else is wrong.
	obj, rej := object(body)
	if rej != nil {
		return nil, rej
	}
	// Every form comes down to metric → value, metric → unit and "ts".
	tsRaw, hasTS := obj["ts"]
	metrics := obj
	var units map[string]json.RawMessage
	switch values, nested := obj["values"]; {
	case metric != "":
		raw, ok := obj["value"]
		if !ok {
			return nil, reject(ReasonNoValues, "object has no \"value\" key")
		}
		metrics = map[string]json.RawMessage{metric: raw}
		if raw, ok := obj["unit"]; ok {
			units = map[string]json.RawMessage{metric: raw}
		}
	case nested:
		if values[0] != '{' {
			return nil, reject(ReasonMalformedJSON, "\"values\" is %s, want an object", kind(values))
		}
		if metrics, rej = object(values); rej != nil {
			return nil, rej
		}
		if raw, ok := obj["units"]; ok {
			if raw[0] != '{' {
				return nil, reject(ReasonBadUnit, "\"units\" is %s, want an object", kind(raw))
			}
			if units, rej = object(raw); rej != nil {
				return nil, rej
			}
		}
	default: // flat: every key but "ts" is a metric, "units" included
		delete(metrics, "ts")
	}
	rs, rej := metricReadings(sensor, metrics)
	if rej != nil {
		return nil, rej
	}
	// Every unit is checked, also those of metrics the message lacks.
	for metric, raw := range units {
		u, rej := unit(raw, metric)
		if rej != nil {
			return nil, rej
		}
		if i, ok := slices.BinarySearchFunc(rs, metric, func(r model.Reading, m string) int {
			return strings.Compare(r.Metric, m)
		}); ok {
			rs[i].Unit = u
		}
	}
	ts := stamp(now)
	if hasTS {
		if ts, rej = tsValue(tsRaw, now); rej != nil {
			return nil, rej
		}
	}
	for i := range rs {
		rs[i].TS = ts
		rs[i].Receipt = !hasTS
	}
	return rs, nil
}

// splitTopic returns the sensor id and, for three-segment topics, the metric
// ("" for two-segment topics).
func splitTopic(topic string) (sensor, metric string, rej *RejectError) {
	prefix, rest, two := strings.Cut(topic, "/")
	sensor, metric, three := strings.Cut(rest, "/")
	if !two || prefix == "" || sensor == "" || three && (metric == "" || strings.Contains(metric, "/")) {
		return "", "", reject(ReasonBadTopic,
			"topic %q: want {prefix}/{sensor_id} or {prefix}/{sensor_id}/{metric}, no empty levels", clip(topic))
	}
	if err := model.ValidID(sensor); err != nil {
		return "", "", reject(ReasonInvalidSensorID, "sensor id %q: %v", clip(sensor), err)
	}
	if three {
		if err := model.ValidID(metric); err != nil {
			return "", "", reject(ReasonInvalidMetric, "metric %q: %v", clip(metric), err)
		}
	}
	return sensor, metric, nil
}

// decodeBare decodes a payload that is just a number. strconv.ParseFloat
// also accepts "NaN", "Inf" and "1e999" (as ±Inf with ErrRange): those are
// numbers, but not storable ones, hence not_finite rather than non_numeric.
func decodeBare(sensor, metric string, body []byte, now time.Time) ([]model.Reading, error) {
	v, err := strconv.ParseFloat(string(body), 64)
	if err != nil && !(errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0)) {
		return nil, reject(ReasonNonNumeric,
			"payload %q is neither a number nor a JSON object", clip(string(body)))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, reject(ReasonNotFinite, "payload %q is not a finite number", clip(string(body)))
	}
	return []model.Reading{{SensorID: sensor, Metric: metric, Value: v, TS: stamp(now), Receipt: true}}, nil
}

// object decodes a JSON object into its members. Keys come unescaped; each
// value stays raw, valid JSON without surrounding whitespace, so raw[0]
// tells its kind.
func object(raw []byte) (map[string]json.RawMessage, *RejectError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, reject(ReasonMalformedJSON, "invalid JSON at byte %d: %v", se.Offset, err)
		}
		return nil, reject(ReasonMalformedJSON, "invalid JSON: %v", err)
	}
	return obj, nil
}

// metricReadings turns metric → value members into readings sorted by
// metric. Visiting the metrics in order (rather than in Go's random map
// order) also makes the error for a message with several bad metrics the
// same every time.
func metricReadings(sensor string, metrics map[string]json.RawMessage) ([]model.Reading, *RejectError) {
	if len(metrics) > MaxValuesPerMessage {
		return nil, reject(ReasonTooManyValues, "%d values, limit %d", len(metrics), MaxValuesPerMessage)
	}
	if len(metrics) == 0 {
		return nil, reject(ReasonNoValues, "object has no metrics")
	}
	rs := make([]model.Reading, 0, len(metrics))
	for _, metric := range slices.Sorted(maps.Keys(metrics)) {
		if err := model.ValidID(metric); err != nil {
			return nil, reject(ReasonInvalidMetric, "metric %q: %v", clip(metric), err)
		}
		v, rej := number(metrics[metric], metric)
		if rej != nil {
			return nil, rej
		}
		rs = append(rs, model.Reading{SensorID: sensor, Metric: metric, Value: v})
	}
	return rs, nil
}

// kind names the JSON type of a raw value for error messages.
func kind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func number(raw json.RawMessage, metric string) (float64, *RejectError) {
	if k := kind(raw); k != "a number" {
		return 0, reject(ReasonNonNumeric, "value of %q is %s, want a number", clip(metric), k)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// raw is a valid JSON number, so the only failure left is a
		// magnitude beyond float64 (1e999).
		return 0, reject(ReasonNotFinite, "value of %q: %s is out of float64 range", clip(metric), clip(string(raw)))
	}
	return v, nil
}

func unit(raw json.RawMessage, metric string) (string, *RejectError) {
	if k := kind(raw); k != "a string" {
		return "", reject(ReasonBadUnit, "unit of %q is %s, want a string", clip(metric), k)
	}
	// Checked on the raw bytes: encoding/json turns invalid UTF-8 into
	// U+FFFD rather than failing.
	if !utf8.Valid(raw) {
		return "", reject(ReasonBadUnit, "unit of %q is not valid UTF-8", clip(metric))
	}
	var u string
	_ = json.Unmarshal(raw, &u) // a valid JSON string always decodes
	if len(u) > MaxUnitBytes {
		return "", reject(ReasonBadUnit, "unit of %q is %d bytes, limit %d", clip(metric), len(u), MaxUnitBytes)
	}
	return u, nil
}

// tsValue reads a "ts" value: an RFC 3339 string or Unix seconds or
// milliseconds.
func tsValue(raw json.RawMessage, now time.Time) (time.Time, *RejectError) {
	var t time.Time
	switch k := kind(raw); k {
	case "a string":
		var s string
		_ = json.Unmarshal(raw, &s) // a valid JSON string always decodes
		var err error
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, reject(ReasonBadTS, "ts %q is not an RFC 3339 time", clip(s))
		}
		if t.Before(minTS) || t.After(maxTS) {
			return time.Time{}, reject(ReasonBadTS, "ts %q is outside years 2000..9999", clip(s))
		}
		t = t.UTC().Truncate(time.Microsecond)
	case "a number":
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
		return time.Time{}, reject(ReasonBadTS, "ts is %s, want an RFC 3339 string or a Unix time", k)
	}
	if t.After(now.Add(MaxFutureSkew)) {
		return time.Time{}, reject(ReasonFutureTS, "ts %s is more than %s after the receive time %s",
			t.Format(time.RFC3339Nano), MaxFutureSkew, now.UTC().Format(time.RFC3339))
	}
	return t, nil
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
