package rooms

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// FuzzDecodeRoom: the data of a room request ({"room":...,"kind":...}) is
// either refused with bad_request or names a valid room and decodes again
// to the same value once re-encoded. No store is needed: decoding comes
// before any lookup.
func FuzzDecodeRoom(f *testing.F) {
	for _, s := range []string{`{"room":"ops"}`, `{"room":"ops","kind":"alerts"}`, `{"room":""}`, `{"room":"a/b"}`, `null`, ` `, `{"room":5}`} {
		f.Add([]byte(s))
	}
	r := New(Config{}, nil, newFakeHub(), nil, prometheus.NewRegistry(), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d struct {
			Room string `json:"room"`
			Kind string `json:"kind"`
		}
		req := protocol.Request{Type: "create_room", User: "ana", Data: data}
		if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name"}`); err != nil {
			var he *protocol.Error
			if !errors.As(err, &he) || he.Code != protocol.CodeBadRequest || he.Message == "" {
				t.Fatalf("refused with %v, want a bad_request hub.Error", err)
			}
			return
		}
		if err := model.ValidRoomName(d.Room); err != nil {
			t.Fatalf("accepted invalid room %q: %v", d.Room, err)
		}
		b, _ := json.Marshal(d)
		again := d
		again.Room, again.Kind = "", ""
		req.Data = b
		if err := r.decodeRoom(req, &again, &again.Room, `{"room":"name"}`); err != nil || again != d {
			t.Fatalf("round trip of %+v: %+v, %v", d, again, err)
		}
	})
}
