package hub

import (
	"encoding/json"
	"testing"
)

// FuzzParseRequest feeds arbitrary client frames to the request decoder:
// it must never panic, and whatever it accepts must have a type and an id
// that is safe to echo back as ref.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":7}`,
		`{"type":"subscribe","id":"a","data":{"sensors":["s-1"]}}`,
		`{"type":"ack","ref":42}`,
		`{"type":"auth","data":{"token":"x.y.z"}}`,
		`{"type":5,"id":{}}`,
		`[1,2]`, `null`, `"ping"`, `{"id":1e400}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, perr := parseRequest(b)
		if len(env.ID) > 0 && !validID(env.ID) {
			t.Fatalf("parseRequest kept an invalid id %q", env.ID)
		}
		if perr != nil {
			// The error reply must encode.
			if _, err := json.Marshal(map[string]any{"ref": env.ID, "msg": perr.Message}); err != nil {
				t.Fatalf("error reply does not encode: %v", err)
			}
			return
		}
		if env.Type == "" {
			t.Fatalf("accepted a frame without type: %q", b)
		}
	})
}
