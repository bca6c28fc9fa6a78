package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/watchroom/watchroom/internal/model"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 1, 11, 59, 0, 0, time.UTC)
	r := func(metric string, v float64, unit string, ts time.Time) model.Reading {
		return model.Reading{SensorID: "s-1", Metric: metric, Value: v, Unit: unit, TS: ts}
	}
	tests := []struct {
		name    string
		topic   string
		payload string
		want    []model.Reading
	}{
		{"bare number", "sensors/s-1/temperature", "23.5", []model.Reading{r("temperature", 23.5, "", testNow)}},
		{"bare number with whitespace", "sensors/s-1/temperature", " \n23.5\t\r\n", []model.Reading{r("temperature", 23.5, "", testNow)}},
		{"bare negative exponent", "sensors/s-1/temperature", "-1.5e2", []model.Reading{r("temperature", -150, "", testNow)}},
		{"other prefix", "plant7/s-1/temperature", "1", []model.Reading{r("temperature", 1, "", testNow)}},
		{"single object", "sensors/s-1/temperature", `{"value": 23.5, "unit": "°C", "ts": "2024-05-01T11:59:00Z"}`,
			[]model.Reading{r("temperature", 23.5, "°C", ts)}},
		{"single object value only", "sensors/s-1/temperature", `{"value":0}`, []model.Reading{r("temperature", 0, "", testNow)}},
		{"single object ignores unknown keys", "sensors/s-1/temperature", `{"seq": 5, "meta": {"a": [1, {"b": null}], "c": "x"}, "value": 2}`,
			[]model.Reading{r("temperature", 2, "", testNow)}},
		{"ts unix seconds", "sensors/s-1/temperature", `{"value": 1, "ts": 1714564740}`, []model.Reading{r("temperature", 1, "", ts)}},
		{"ts fractional seconds", "sensors/s-1/temperature", `{"value": 1, "ts": 1714564740.123456}`,
			[]model.Reading{r("temperature", 1, "", ts.Add(123456*time.Microsecond))}},
		{"ts milliseconds", "sensors/s-1/temperature", `{"value": 1, "ts": 1714564740123}`,
			[]model.Reading{r("temperature", 1, "", ts.Add(123*time.Millisecond))}},
		{"ts exponent", "sensors/s-1/temperature", `{"value": 1, "ts": 1.71456474e9}`, []model.Reading{r("temperature", 1, "", ts)}},
		{"ts offset to UTC", "sensors/s-1/temperature", `{"value": 1, "ts": "2024-05-01T13:59:00+02:00"}`, []model.Reading{r("temperature", 1, "", ts)}},
		{"ts nanoseconds truncated", "sensors/s-1/temperature", `{"value": 1, "ts": "2024-05-01T11:59:00.123456789Z"}`,
			[]model.Reading{r("temperature", 1, "", ts.Add(123456*time.Microsecond))}},
		{"ts within skew", "sensors/s-1/temperature", `{"value": 1, "ts": "2024-05-01T12:05:00Z"}`,
			[]model.Reading{r("temperature", 1, "", testNow.Add(5*time.Minute))}},
		{"nested", "sensors/s-1", `{"ts": "2024-05-01T11:59:00Z", "values": {"temperature": 23.5, "humidity": 41}, "units": {"temperature": "°C"}}`,
			[]model.Reading{r("humidity", 41, "", ts), r("temperature", 23.5, "°C", ts)}},
		{"nested units first, unit of absent metric", "sensors/s-1", `{"units": {"temperature": "°C", "co2": "ppm"}, "values": {"temperature": 23.5}}`,
			[]model.Reading{r("temperature", 23.5, "°C", testNow)}},
		{"nested ignores other keys", "sensors/s-1", `{"values": {"a": 1}, "battery": "low"}`, []model.Reading{r("a", 1, "", testNow)}},
		{"flat", "sensors/s-1", `{"temperature": 23.5, "humidity": 41, "ts": 1714564740}`,
			[]model.Reading{r("humidity", 41, "", ts), r("temperature", 23.5, "", ts)}},
		{"flat without ts", "sensors/s-1", `{"z.1": 3, "a_b": -1}`, []model.Reading{r("a_b", -1, "", testNow), r("z.1", 3, "", testNow)}},
		{"duplicate key, last wins", "sensors/s-1", `{"values": {"a": 1, "\u0061": 2}}`, []model.Reading{r("a", 2, "", testNow)}},
		{"escaped key and unit", "sensors/s-1", `{"values": {"temp\u0065rature": 1}, "units": {"temperature": "\u00b0C"}}`,
			[]model.Reading{r("temperature", 1, "°C", testNow)}},
		{"256 values", "sensors/s-1", manyValues(256, false), nil}, // checked by count below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tt.topic, []byte(tt.payload), testNow)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.want == nil {
				if len(got) != 256 {
					t.Fatalf("got %d readings, want 256", len(got))
				}
				return
			}
			if !slices.EqualFunc(got, tt.want, readingEqual) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			for _, r := range got {
				if r.TS.Location() != time.UTC {
					t.Errorf("ts %v not in UTC", r.TS)
				}
			}
		})
	}
}

func readingEqual(a, b model.Reading) bool {
	return a.SensorID == b.SensorID && a.Metric == b.Metric && a.Value == b.Value && a.Unit == b.Unit && a.TS.Equal(b.TS)
}

// manyValues returns a flat (or nested) object with n metrics.
func manyValues(n int, nested bool) string {
	var b strings.Builder
	if nested {
		b.WriteString(`{"values":`)
	}
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	b.WriteByte('}')
	if nested {
		b.WriteByte('}')
	}
	return b.String()
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	const topic = "sensors/s-1/temperature"
	const multi = "sensors/s-1"
	tests := []struct {
		name    string
		topic   string
		payload string
		reason  string
	}{
		{"oversize", topic, strings.Repeat(" ", MaxPayloadBytes) + "1", ReasonOversize},
		{"oversize checked before topic", "bad", strings.Repeat("x", MaxPayloadBytes+1), ReasonOversize},
		{"empty", topic, "", ReasonEmpty},
		{"whitespace only", topic, " \n\t", ReasonEmpty},

		{"no prefix segment", "sensors", "1", ReasonBadTopic},
		{"empty prefix", "/s-1/temperature", "1", ReasonBadTopic},
		{"empty sensor", "sensors//temperature", "1", ReasonBadTopic},
		{"empty sensor two segments", "sensors/", `{"a":1}`, ReasonBadTopic},
		{"empty metric", "sensors/s-1/", "1", ReasonBadTopic},
		{"too deep", "sensors/s-1/temperature/x", "1", ReasonBadTopic},
		{"empty topic", "", "1", ReasonBadTopic},

		{"sensor with space", "sensors/s 1/temperature", "1", ReasonInvalidSensorID},
		{"sensor too long", "sensors/" + strings.Repeat("a", model.MaxIDLen+1) + "/t", "1", ReasonInvalidSensorID},
		{"sensor wildcard", "sensors/+/t", "1", ReasonInvalidSensorID},

		{"metric in topic", "sensors/s-1/temp#", "1", ReasonInvalidMetric},
		{"metric flat key", multi, `{"bad key": 1}`, ReasonInvalidMetric},
		{"metric nested key", multi, `{"values": {"a/b": 1}}`, ReasonInvalidMetric},
		{"metric empty key", multi, `{"": 1}`, ReasonInvalidMetric},

		{"truncated object", topic, `{"value": 1`, ReasonMalformedJSON},
		{"trailing comma", topic, `{"value": 1,}`, ReasonMalformedJSON},
		{"leading zero", topic, `{"value": 01}`, ReasonMalformedJSON},
		{"trailing garbage", topic, `{"value": 1} x`, ReasonMalformedJSON},
		{"single quotes", multi, `{'a': 1}`, ReasonMalformedJSON},
		{"bad escape", multi, `{"a\x": 1}`, ReasonMalformedJSON},
		{"control char in string", topic, "{\"value\": 1, \"unit\": \"a\nb\"}", ReasonMalformedJSON},
		{"syntax beats semantics", topic, `{"value": "x", }`, ReasonMalformedJSON},
		{"bare number on sensor topic", multi, "23.5", ReasonMalformedJSON},
		{"array on sensor topic", multi, "[1]", ReasonMalformedJSON},
		{"values not object", multi, `{"values": 5}`, ReasonMalformedJSON},
		{"nesting beyond encoding/json's limit", topic, `{"value": 1, "x": ` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}`, ReasonMalformedJSON},

		{"bare word", topic, "warm", ReasonNonNumeric},
		{"bare string", topic, `"23.5"`, ReasonNonNumeric},
		{"bare true", topic, `true`, ReasonNonNumeric},
		{"bare null", topic, `null`, ReasonNonNumeric},
		{"bare array", topic, `[23.5]`, ReasonNonNumeric},
		{"value string", topic, `{"value": "23.5"}`, ReasonNonNumeric},
		{"value bool", topic, `{"value": true}`, ReasonNonNumeric},
		{"value null", topic, `{"value": null}`, ReasonNonNumeric},
		{"value object", topic, `{"value": {"v": 1}}`, ReasonNonNumeric},
		{"flat string", multi, `{"a": 1, "b": "x"}`, ReasonNonNumeric},
		{"nested null", multi, `{"values": {"a": null}}`, ReasonNonNumeric},
		{"flat units is a metric", multi, `{"a": 1, "units": {"a": "C"}}`, ReasonNonNumeric},

		{"bare NaN", topic, "NaN", ReasonNotFinite},
		{"bare Inf", topic, "Inf", ReasonNotFinite},
		{"bare -Infinity", topic, "-Infinity", ReasonNotFinite},
		{"bare overflow", topic, "1e999", ReasonNotFinite},
		{"json overflow", topic, `{"value": -1e999}`, ReasonNotFinite},
		{"flat overflow", multi, `{"a": 1e400}`, ReasonNotFinite},

		{"ts words", topic, `{"value": 1, "ts": "yesterday"}`, ReasonBadTS},
		{"ts numeric string", topic, `{"value": 1, "ts": "1714564740"}`, ReasonBadTS},
		{"ts negative", topic, `{"value": 1, "ts": -5}`, ReasonBadTS},
		{"ts zero", topic, `{"value": 1, "ts": 0}`, ReasonBadTS},
		{"ts uptime seconds", topic, `{"value": 1, "ts": 86400}`, ReasonBadTS},
		{"ts before 2000", topic, `{"value": 1, "ts": "1999-12-31T23:59:59Z"}`, ReasonBadTS},
		{"ts bool", topic, `{"value": 1, "ts": true}`, ReasonBadTS},
		{"ts null", multi, `{"a": 1, "ts": null}`, ReasonBadTS},
		{"ts absurd", topic, `{"value": 1, "ts": 1e300}`, ReasonBadTS},
		{"ts huge overflow", topic, `{"value": 1, "ts": 1e999}`, ReasonBadTS},

		{"future string", topic, `{"value": 1, "ts": "2024-05-01T12:05:01Z"}`, ReasonFutureTS},
		{"future seconds", multi, `{"a": 1, "ts": 1714565161}`, ReasonFutureTS},
		{"future milliseconds", multi, `{"values": {"a": 1}, "ts": 1714565161000}`, ReasonFutureTS},
		{"far future", topic, `{"value": 1, "ts": "3000-01-01T00:00:00Z"}`, ReasonFutureTS},

		{"empty object", multi, `{}`, ReasonNoValues},
		{"empty values", multi, `{"values": {}}`, ReasonNoValues},
		{"only ts", multi, `{"ts": 1714564740}`, ReasonNoValues},
		{"single without value", topic, `{"unit": "C"}`, ReasonNoValues},

		{"flat 257", multi, manyValues(MaxValuesPerMessage+1, false), ReasonTooManyValues},
		{"nested 257", multi, manyValues(MaxValuesPerMessage+1, true), ReasonTooManyValues},
		{"flat 1000", multi, manyValues(1000, false), ReasonTooManyValues},

		{"unit too long", topic, `{"value": 1, "unit": "` + strings.Repeat("u", MaxUnitBytes+1) + `"}`, ReasonBadUnit},
		{"unit not string", topic, `{"value": 1, "unit": 5}`, ReasonBadUnit},
		{"unit invalid utf8", topic, "{\"value\": 1, \"unit\": \"\xff\"}", ReasonBadUnit},
		{"units not object", multi, `{"values": {"a": 1}, "units": "C"}`, ReasonBadUnit},
		{"units entry not string", multi, `{"values": {"a": 1}, "units": {"a": 1}}`, ReasonBadUnit},
		{"units of absent metric checked", multi, `{"values": {"a": 1}, "units": {"b": "` + strings.Repeat("u", 20) + `"}}`, ReasonBadUnit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tt.topic, []byte(tt.payload), testNow)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", got)
			}
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("error %T %v is not a *RejectError", err, err)
			}
			if rej.Reason != tt.reason {
				t.Fatalf("reason %q, want %q (error: %v)", rej.Reason, tt.reason, err)
			}
			if got != nil {
				t.Errorf("readings returned with an error: %+v", got)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.reason) || len(msg) > 400 {
				t.Errorf("error message %q should name the reason and stay short", msg)
			}
		})
	}
}

func TestRejectReasonsAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range rejectReasons() {
		if seen[r] {
			t.Errorf("reason %q listed twice", r)
		}
		seen[r] = true
	}
	if len(seen) != 17 {
		t.Errorf("got %d reasons, want 17", len(seen))
	}
}

// checkDecoded asserts the invariants every successful Decode keeps.
func checkDecoded(t *testing.T, topic string, rs []model.Reading, now time.Time) {
	t.Helper()
	if len(rs) == 0 || len(rs) > MaxValuesPerMessage {
		t.Fatalf("%q: %d readings", topic, len(rs))
	}
	for i, r := range rs {
		if err := model.ValidID(r.SensorID); err != nil {
			t.Errorf("%q: sensor id %q: %v", topic, r.SensorID, err)
		}
		if err := model.ValidID(r.Metric); err != nil {
			t.Errorf("%q: metric %q: %v", topic, r.Metric, err)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			t.Errorf("%q: value %v", topic, r.Value)
		}
		if r.TS.IsZero() || r.TS.Location() != time.UTC || r.TS.After(now.Add(MaxFutureSkew)) {
			t.Errorf("%q: ts %v (now %v)", topic, r.TS, now)
		}
		if len(r.Unit) > MaxUnitBytes || !utf8.ValidString(r.Unit) {
			t.Errorf("%q: unit %q", topic, r.Unit)
		}
		if i > 0 && rs[i-1].Metric >= r.Metric {
			t.Errorf("%q: readings not sorted by metric or duplicated: %q then %q", topic, rs[i-1].Metric, r.Metric)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []struct{ topic, payload string }{
		{"sensors/s1/temperature", "23.5"},
		{"sensors/s1/temperature", `{"value": 23.5, "unit": "°C", "ts": "2024-05-01T11:59:00Z"}`},
		{"sensors/s1", `{"ts": 1714564740123, "values": {"temperature": 23.5, "humidity": 41}, "units": {"temperature": "°C"}}`},
		{"sensors/s1", `{"temperature": 23.5, "humidity": 41, "ts": 1714564740.5}`},
	}
	for _, s := range seeds {
		f.Add(s.topic, []byte(s.payload))
	}
	known := map[string]bool{}
	for _, r := range rejectReasons() {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		rs, err := Decode(topic, payload, testNow)
		// Decode walks Go maps, whose order is random: the outcome must
		// not depend on it.
		again, errAgain := Decode(topic, payload, testNow)
		if !slices.EqualFunc(rs, again, readingEqual) || reasonOf(err) != reasonOf(errAgain) {
			t.Fatalf("two runs differ: %+v, %v then %+v, %v", rs, err, again, errAgain)
		}
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) || !known[rej.Reason] || rej.Err == nil {
				t.Fatalf("error %T %v is not a *RejectError with a known reason", err, err)
			}
			if rs != nil {
				t.Fatalf("readings returned with an error")
			}
			return
		}
		checkDecoded(t, topic, rs, testNow)
	})
}

// reasonOf returns the reason of a *RejectError, "" for anything else.
func reasonOf(err error) string {
	var rej *RejectError
	if errors.As(err, &rej) {
		return rej.Reason
	}
	return ""
}

// Benchmarks, one per payload form. Run with
//
//	go test -run '^$' -bench Decode -benchmem ./internal/ingest
func BenchmarkDecode(b *testing.B) {
	forms := []struct{ name, topic, payload string }{
		{"bare", "sensors/s-0001/temperature", "23.5"},
		{"single_object", "sensors/s-0001/temperature", `{"value": 23.5, "unit": "°C", "ts": 1714564740123}`},
		{"single_object_rfc3339", "sensors/s-0001/temperature", `{"value": 23.5, "unit": "°C", "ts": "2024-05-01T11:59:00.123Z"}`},
		{"nested", "sensors/s-0001", `{"ts": 1714564740123, "values": {"temperature": 23.5, "humidity": 41}, "units": {"temperature": "°C", "humidity": "%"}}`},
		{"flat", "sensors/s-0001", `{"temperature": 23.5, "humidity": 41, "ts": 1714564740123}`},
		{"flat_8_metrics", "sensors/s-0001", `{"m1": 1, "m2": 2, "m3": 3, "m4": 4, "m5": 5, "m6": 6, "m7": 7, "m8": 8.5}`},
		{"rejected_non_numeric", "sensors/s-0001/temperature", "warm"},
	}
	for _, fm := range forms {
		b.Run(fm.name, func(b *testing.B) {
			payload := []byte(fm.payload)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				_, _ = Decode(fm.topic, payload, testNow)
			}
		})
	}
}

// TestDecodeMarksReceiptStamps: only readings stamped with the receive
// time are marked Receipt (the store may move those, never the others).
func TestDecodeMarksReceiptStamps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic, payload string
		receipt        bool
	}{
		{"sensors/s/t", "1", true},
		{"sensors/s/t", `{"value": 1}`, true},
		{"sensors/s/t", `{"value": 1, "ts": 1714564800}`, false},
		{"sensors/s", `{"a": 1, "b": 2}`, true},
		{"sensors/s", `{"ts": "2024-05-01T12:00:00Z", "values": {"a": 1}}`, false},
	}
	for _, tt := range tests {
		rs, err := Decode(tt.topic, []byte(tt.payload), testNow)
		if err != nil {
			t.Fatalf("Decode(%s, %s): %v", tt.topic, tt.payload, err)
		}
		for _, r := range rs {
			if r.Receipt != tt.receipt {
				t.Errorf("Decode(%s, %s): Receipt = %v, want %v", tt.topic, tt.payload, r.Receipt, tt.receipt)
			}
		}
	}
}
