package devices

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, sensor, action string
		params               json.RawMessage
		want                 string // normalised params; "" means a bad_request
	}{
		{"absent params", "s-5", "calibrate_sensor", nil, `{}`},
		{"null params", "s-5", "calibrate_sensor", json.RawMessage(` null `), `{}`},
		{"object compacted", "s-5", "set_interval", json.RawMessage("{ \"seconds\" :\n 5 }"), `{"seconds":5}`},
		{"dotted sensor", "plant.1_a-B", "a", json.RawMessage(`{}`), `{}`},
		{"64-char action", "s-5", strings.Repeat("a", 64), nil, `{}`},
		{"params exactly 4 KiB", "s-5", "x", json.RawMessage(`{"k":"` + strings.Repeat("v", 4096-8) + `"}`), `{"k":"` + strings.Repeat("v", 4096-8) + `"}`},

		{"empty sensor", "", "reboot", nil, ""},
		{"sensor with slash", "s/5", "reboot", nil, ""},
		{"sensor with wildcard", "#", "reboot", nil, ""},
		{"sensor too long", strings.Repeat("s", 65), "reboot", nil, ""},
		{"empty action", "s-5", "", nil, ""},
		{"action too long", "s-5", strings.Repeat("a", 65), nil, ""},
		{"action upper case", "s-5", "Reboot", nil, ""},
		{"action with dash", "s-5", "re-boot", nil, ""},
		{"action with space", "s-5", "re boot", nil, ""},
		{"params array", "s-5", "reboot", json.RawMessage(`[]`), ""},
		{"params string", "s-5", "reboot", json.RawMessage(`"x"`), ""},
		{"params number", "s-5", "reboot", json.RawMessage(`1`), ""},
		{"params invalid json", "s-5", "reboot", json.RawMessage(`{"a":}`), ""},
		{"params two objects", "s-5", "reboot", json.RawMessage(`{} {}`), ""},
		{"params over 4 KiB", "s-5", "x", json.RawMessage(`{"k":"` + strings.Repeat("v", 4096) + `"}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validate(tc.sensor, tc.action, tc.params)
			if tc.want == "" {
				var re *RequestError
				if !errors.As(err, &re) || re.Code != CodeBadRequest || re.Message == "" {
					t.Fatalf("validate = %s, %v; want a bad_request *RequestError", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("validate = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	id := newCommandID()
	for _, tc := range []struct {
		name, topic, payload string
		want                 response
		reason               string
	}{
		{"success", "devices/s-5/responses", `{"id":"` + id + `","status":"success","message":"ok"}`,
			response{SensorID: "s-5", ID: id, Status: "success", Message: "ok"}, ""},
		{"error without message", "devices/s-5/responses", `{"id":"` + id + `","status":"error"}`,
			response{SensorID: "s-5", ID: id, Status: "error"}, ""},
		{"extra fields ignored", "devices/s-5/responses", `{"id":"` + id + `","status":"success","extra":[1]}`,
			response{SensorID: "s-5", ID: id, Status: "success"}, ""},
		{"other prefix", "other/s-5/responses", `{}`, response{}, reasonBadTopic},
		{"commands topic", "devices/s-5/commands", `{}`, response{}, reasonBadTopic},
		{"nested topic", "devices/a/b/responses", `{}`, response{}, reasonBadTopic},
		{"empty sensor", "devices//responses", `{}`, response{}, reasonBadTopic},
		{"too large", "devices/s-5/responses", strings.Repeat(" ", 16<<10+1), response{}, reasonTooLarge},
		{"not json", "devices/s-5/responses", `ok`, response{}, reasonMalformed},
		{"empty payload", "devices/s-5/responses", ``, response{}, reasonMalformed},
		{"json array", "devices/s-5/responses", `[]`, response{}, reasonMalformed},
		{"no id", "devices/s-5/responses", `{"status":"success"}`, response{}, reasonMalformed},
		{"id too long", "devices/s-5/responses", `{"id":"` + strings.Repeat("a", 65) + `","status":"success"}`, response{}, reasonMalformed},
		{"status timeout", "devices/s-5/responses", `{"id":"` + id + `","status":"timeout"}`, response{}, reasonBadStatus},
		{"status missing", "devices/s-5/responses", `{"id":"` + id + `"}`, response{}, reasonBadStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := parseResponse("devices", tc.topic, []byte(tc.payload))
			if reason != tc.reason || got != tc.want {
				t.Fatalf("parseResponse = %+v, %q; want %+v, %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: never split it
		{"éé", 3, "é"},
		{"", 0, ""},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	ok := Config{BrokerURL: "tcp://127.0.0.1:1", ClientID: "x"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{"no broker", func(c *Config) { c.BrokerURL = "" }},
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }},
		{"wildcard prefix", func(c *Config) { c.Prefix = "dev/+" }},
		{"trailing slash", func(c *Config) { c.Prefix = "devices/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			if _, err := New(cfg, newFakeStore(), &fakeNotifier{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
				t.Fatalf("New accepted %+v", cfg)
			}
		})
	}
	d, err := New(ok, newFakeStore(), &fakeNotifier{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if d.timeout != DefaultTimeout || d.prefix != defaultPrefix {
		t.Errorf("defaults: timeout %s prefix %q, want %s %q", d.timeout, d.prefix, DefaultTimeout, defaultPrefix)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add("devices/s-5/responses", []byte(`{"id":"0123456789abcdef0123456789abcdef","status":"success","message":"ok"}`))
	f.Add("devices/s-5/responses", []byte(`{"id":"x","status":"error","message":"`+strings.Repeat("é", 700)+`"}`))
	f.Add("devices/s 5/responses", []byte(`{}`))
	f.Add("devices/s-5/responses", []byte(`{"id":5}`))
	f.Add("devices/+/responses", []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		r, reason := parseResponse("devices", topic, payload)
		if reason != "" {
			if r != (response{}) {
				t.Fatalf("rejected (%s) but returned %+v", reason, r)
			}
			return
		}
		if model.ValidID(r.SensorID) != nil || r.ID == "" || len(r.ID) > maxCommandIDLen {
			t.Fatalf("accepted invalid ids: %+v", r)
		}
		if r.Status != model.CommandSuccess && r.Status != model.CommandError {
			t.Fatalf("accepted status %q", r.Status)
		}
		if len(r.Message) > maxMessage || !utf8.ValidString(r.Message) {
			t.Fatalf("message of %d bytes, valid UTF-8 %v", len(r.Message), utf8.ValidString(r.Message))
		}
	})
}
