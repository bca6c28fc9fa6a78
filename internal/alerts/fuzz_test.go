package alerts

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// FuzzDecodeAck: any data is either refused with bad_request or gives a
// positive id that encodes back to the same request.
func FuzzDecodeAck(f *testing.F) {
	for _, s := range []string{`{"alert_id":7}`, `{"alert_id":"42"}`, `{"alert_id":0}`, `null`, `{}`, `[1]`, `{"alert_id":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, herr := decodeAck(data)
		if herr != nil {
			checkBadRequest(t, herr)
			return
		}
		if id <= 0 {
			t.Fatalf("accepted id %d", id)
		}
		b, _ := json.Marshal(map[string]int64{"alert_id": id})
		if again, herr := decodeAck(b); herr != nil || again != id {
			t.Fatalf("round trip of %d: %d, %v", id, again, herr)
		}
	})
}

// FuzzDecodeResolve: as FuzzDecodeAck, and an accepted note is trimmed and
// within the limit.
func FuzzDecodeResolve(f *testing.F) {
	for _, s := range []string{`{"alert_id":7,"note":"fixed"}`, `{"alert_id":"3","note":"  "}`, `{"alert_id":-1}`, `{"alert_id":7,"note":5}`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, note, herr := decodeResolve(data)
		if herr != nil {
			checkBadRequest(t, herr)
			return
		}
		if id <= 0 || note != strings.TrimSpace(note) || utf8.RuneCountInString(note) > model.MaxAlertNote {
			t.Fatalf("accepted id %d note %q", id, note)
		}
		b, _ := json.Marshal(map[string]any{"alert_id": id, "note": note})
		if id2, note2, herr := decodeResolve(b); herr != nil || id2 != id || note2 != note {
			t.Fatalf("round trip of %d %q: %d %q %v", id, note, id2, note2, herr)
		}
	})
}

func checkBadRequest(t *testing.T, herr *protocol.Error) {
	t.Helper()
	if herr.Code != protocol.CodeBadRequest || herr.Message == "" {
		t.Fatalf("refused with %+v, want bad_request and a message", herr)
	}
}
