package hub

import (
	"encoding/json"
	"github.com/watchroom/watchroom/internal/protocol"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		typ     string
		id      string // raw id kept for ref
		data    string
		errCode string
	}{
		{name: "number id", in: `{"type":"ping","id":7}`, typ: "ping", id: "7"},
		{name: "string id", in: `{"type":"ping","id":"c1"}`, typ: "ping", id: `"c1"`},
		{name: "float id", in: `{"type":"ping","id":1.5e3}`, typ: "ping", id: "1.5e3"},
		{name: "negative id", in: `{"type":"ping","id":-1}`, typ: "ping", id: "-1"},
		{name: "no id", in: `{"type":"ping"}`, typ: "ping"},
		{name: "data kept raw", in: `{"type":"subscribe","id":1,"data":{"sensors":["s-1"]}}`, typ: "subscribe", id: "1", data: `{"sensors":["s-1"]}`},
		{name: "unknown fields ignored", in: `{"type":"ping","x":1}`, typ: "ping"},
		{name: "whitespace", in: " \n{ \"type\" : \"ping\" , \"id\" : 7 }\n", typ: "ping", id: "7"},
		{name: "invalid JSON", in: `{"type":"ping"`, errCode: protocol.CodeInvalidJSON},
		{name: "empty", in: ``, errCode: protocol.CodeInvalidJSON},
		{name: "array", in: `[{"type":"ping"}]`, errCode: protocol.CodeInvalidJSON},
		{name: "string", in: `"ping"`, errCode: protocol.CodeInvalidJSON},
		{name: "type not a string", in: `{"type":1}`, errCode: protocol.CodeInvalidJSON},
		{name: "type not a string, id kept", in: `{"type":1,"id":"r"}`, id: `"r"`, errCode: protocol.CodeInvalidJSON},
		{name: "type not a string, bad id dropped", in: `{"type":1,"id":{"a":1}}`, errCode: protocol.CodeInvalidJSON},
		{name: "null", in: `null`, errCode: protocol.CodeBadRequest},
		{name: "no type", in: `{"id":3}`, id: "3", errCode: protocol.CodeBadRequest},
		{name: "empty type", in: `{"type":"","id":3}`, id: "3", errCode: protocol.CodeBadRequest},
		{name: "object id", in: `{"type":"ping","id":{}}`, errCode: protocol.CodeBadRequest},
		{name: "array id", in: `{"type":"ping","id":[1]}`, errCode: protocol.CodeBadRequest},
		{name: "bool id", in: `{"type":"ping","id":false}`, errCode: protocol.CodeBadRequest},
		{name: "null id", in: `{"type":"ping","id":null}`, errCode: protocol.CodeBadRequest},
		{name: "long string id", in: `{"type":"ping","id":"` + strings.Repeat("x", 200) + `"}`, errCode: protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := parseRequest([]byte(tt.in))
			if tt.errCode != "" {
				if err == nil || err.Code != tt.errCode {
					t.Fatalf("error %v, want code %s", err, tt.errCode)
				}
				if string(env.ID) != tt.id {
					t.Errorf("id for the error's ref %q, want %q", env.ID, tt.id)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if env.Type != tt.typ || string(env.ID) != tt.id || string(env.Data) != tt.data {
				t.Errorf("got type %q id %q data %q", env.Type, env.ID, env.Data)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		id, ref json.RawMessage
		data    any
		want    string
	}{
		{"pong", "pong", nil, json.RawMessage("7"), nil, `{"type":"pong","ref":7}`},
		{"string ref", "pong", nil, json.RawMessage(`"a"`), nil, `{"type":"pong","ref":"a"}`},
		{"id and ref", "command_response", json.RawMessage("12"), json.RawMessage(`"c1"`), map[string]string{"status": "success"},
			`{"type":"command_response","id":12,"ref":"c1","data":{"status":"success"}}`},
		{"raw data", "x", nil, nil, json.RawMessage(`[1,2]`), `{"type":"x","data":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := protocol.Encode(tt.typ, tt.id, tt.ref, tt.data)
			if err != nil || string(b) != tt.want {
				t.Errorf("got %s, %v; want %s", b, err, tt.want)
			}
		})
	}
	if _, err := protocol.Encode("x", nil, nil, func() {}); err == nil {
		t.Error("no error for data that cannot be encoded")
	}
}

func TestErrorMessage(t *testing.T) {
	got := string(errorMessage(json.RawMessage("3"), protocol.Errorf(protocol.CodeNotFound, "no message %d", 9)))
	want := `{"type":"error","ref":3,"data":{"code":"not_found","message":"no message 9"}}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if s := protocol.Errorf(protocol.CodeForbidden, "x").Error(); s != "forbidden: x" {
		t.Errorf("Error() = %q", s)
	}
}

func TestFormatTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC), "2026-11-21T10:00:00.123Z"},
		{time.Date(2026, 11, 21, 11, 0, 0, 0, time.FixedZone("CET", 3600)), "2026-11-21T10:00:00.000Z"},
	}
	for _, tt := range tests {
		if got := protocol.FormatTime(tt.in); got != tt.want {
			t.Errorf("FormatTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	type op struct {
		add     bool
		sensors []string
		errCode string // the op is refused and the filter unchanged
	}
	sub := func(s ...string) op { return op{add: true, sensors: s} }
	unsub := func(s ...string) op { return op{add: false, sensors: s} }
	bad := func(o op) op { o.errCode = protocol.CodeBadRequest; return o }

	tests := []struct {
		name     string
		ops      []op
		want     string // describe() as JSON
		wants    []string
		notWants []string
	}{
		{"default", nil, `{"sensors":["*"]}`, []string{"s-1", "x"}, nil},
		{"subscribe narrows the default", []op{sub("s-1", "s-2")}, `{"sensors":["s-1","s-2"]}`, []string{"s-1", "s-2"}, []string{"s-3"}},
		{"subscribe adds to a list", []op{sub("s-1"), sub("s-2")}, `{"sensors":["s-1","s-2"]}`, []string{"s-1", "s-2"}, []string{"s-3"}},
		{"unsubscribe removes from a list", []op{sub("s-1", "s-2"), unsub("s-1")}, `{"sensors":["s-2"]}`, []string{"s-2"}, []string{"s-1"}},
		{"unsubscribe of an absent id", []op{sub("s-1"), unsub("s-9")}, `{"sensors":["s-1"]}`, []string{"s-1"}, []string{"s-9"}},
		{"star restores all", []op{sub("s-1"), sub("*")}, `{"sensors":["*"]}`, []string{"s-1", "s-9"}, nil},
		{"unsubscribe from all excludes", []op{unsub("s-1")}, `{"except":["s-1"],"sensors":["*"]}`, []string{"s-2"}, []string{"s-1"}},
		{"subscribe lifts an exclusion", []op{unsub("s-1", "s-2"), sub("s-1")}, `{"except":["s-2"],"sensors":["*"]}`, []string{"s-1", "s-3"}, []string{"s-2"}},
		{"unsubscribe star stops everything", []op{unsub("*")}, `{"sensors":[]}`, nil, []string{"s-1"}},
		{"subscribe after stopping", []op{unsub("*"), sub("s-4")}, `{"sensors":["s-4"]}`, []string{"s-4"}, []string{"s-1"}},
		{"duplicates", []op{sub("s-1", "s-1")}, `{"sensors":["s-1"]}`, []string{"s-1"}, nil},
		{"empty list refused", []op{sub("s-1"), bad(sub())}, `{"sensors":["s-1"]}`, []string{"s-1"}, []string{"s-2"}},
		{"invalid id refused", []op{bad(sub("s-1", "a/b"))}, `{"sensors":["*"]}`, []string{"s-1"}, nil},
		{"MQTT wildcard refused", []op{bad(unsub("+"))}, `{"sensors":["*"]}`, []string{"+"}, nil},
		{"star mixed with ids refused", []op{bad(sub("*", "s-1"))}, `{"sensors":["*"]}`, nil, nil},
		{"too long id refused", []op{bad(sub(strings.Repeat("a", 65)))}, `{"sensors":["*"]}`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := allSensors
			for _, o := range tt.ops {
				next, err := f.apply(o.add, o.sensors)
				switch {
				case o.errCode != "" && (err == nil || err.Code != o.errCode):
					t.Fatalf("apply(%v, %v): error %v, want %s", o.add, o.sensors, err, o.errCode)
				case o.errCode == "" && err != nil:
					t.Fatalf("apply(%v, %v): %v", o.add, o.sensors, err)
				case err == nil:
					f = next
				}
			}
			got, _ := json.Marshal(f.describe())
			if string(got) != tt.want {
				t.Errorf("describe() = %s, want %s", got, tt.want)
			}
			for _, s := range tt.wants {
				if !f.wants(s) {
					t.Errorf("does not want %s", s)
				}
			}
			for _, s := range tt.notWants {
				if f.wants(s) {
					t.Errorf("wants %s", s)
				}
			}
		})
	}
	// The shared default is never modified.
	if !allSensors.all || len(allSensors.set) != 0 {
		t.Errorf("allSensors changed: %+v", allSensors)
	}
}

func TestFilterLimit(t *testing.T) {
	ids := make([]string, maxFilterSensors+1)
	for i := range ids {
		ids[i] = "s-" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + jsonNumber(i)
	}
	if _, err := allSensors.apply(true, ids); err == nil || err.Code != protocol.CodeBadRequest {
		t.Errorf("%d sensors: error %v, want bad_request", len(ids), err)
	}
	if _, err := allSensors.apply(true, ids[:maxFilterSensors]); err != nil {
		t.Errorf("%d sensors: %v", maxFilterSensors, err)
	}
}
