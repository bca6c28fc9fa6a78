package hub

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/watchroom/watchroom/internal/protocol"
	"testing"
	"time"
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

// FuzzDecodeResume feeds arbitrary resume data to its decoder and to the
// readings stream's cursor decoding: no panic; a refusal is a bad_request
// (or, for readings, too_old); what is accepted names only known streams.
func FuzzDecodeResume(f *testing.F) {
	for _, s := range []string{
		`{"readings":{"since":"2026-11-21T10:00:00.123456Z","sensors":["s-1"]},"rooms":{"general":41},"alerts":318,"direct":55}`,
		`{"readings":{"since":"2026-11-21T10:00:00Z"}}`,
		`{"readings":{"since":"1999-01-01T00:00:00Z"}}`,
		`{"readings":{"since":""}}`, `{"readings":{"since":"2026-11-21T10:00:00Z","sensors":["a b"]}}`,
		`{"chats":1}`, `{}`, `[]`, `null`, `{"readings":5}`, ``,
	} {
		f.Add([]byte(s))
	}
	known := map[string]protocol.Replayer{"readings": nil, "rooms": nil, "alerts": nil, "direct": nil}
	now := time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		cur, streams, e := decodeResume(b, known)
		if e != nil {
			if e.Code != protocol.CodeBadRequest {
				t.Fatalf("decodeResume(%q) = %v, want bad_request", b, e)
			}
			return
		}
		for _, s := range streams {
			if _, ok := known[s]; !ok {
				t.Fatalf("accepted unknown stream %q", s)
			}
		}
		raw, ok := cur["readings"]
		if !ok {
			return
		}
		_, err := ReplayReadings(&fakeHistory{})(context.Background(), protocol.ReplayRequest{
			Cursor: raw, Max: 10, MaxAge: time.Hour, Now: now, Sensors: protocol.SensorFilter{All: true}})
		var ref *protocol.Refusal
		var be *protocol.Error
		switch {
		case err == nil:
		case errors.As(err, &ref) && ref.Reason == protocol.RefusedTooOld:
		case errors.As(err, &be) && be.Code == protocol.CodeBadRequest:
		default:
			t.Fatalf("readings cursor %s: %v", raw, err)
		}
	})
}
