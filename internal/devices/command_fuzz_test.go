package devices

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/watchroom/watchroom/internal/protocol"
)

// FuzzDecodeCommand: the data of a "command" request is refused with
// bad_request, or decodes to fields that encode and decode again to the
// same request (devices.Send validates them; FuzzParseResponse and the
// devices' validate tests cover that side).
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{`{"sensor_id":"s-5","action":"reboot"}`, `{"sensor_id":"s-5","action":"set_interval","params":{"seconds":5}}`, `{"params":null}`, `{}`, `null`, `[]`, `{"sensor_id":5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, herr := decodeCommand(data)
		if herr != nil {
			if herr.Code != protocol.CodeBadRequest || c.SensorID != "" || c.Action != "" || c.Params != nil {
				t.Fatalf("refused with %+v, returned %+v", herr, c)
			}
			return
		}
		if c.Params != nil && !json.Valid(c.Params) {
			t.Fatalf("accepted invalid params %q", c.Params)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("encode %+v: %v", c, err)
		}
		again, herr := decodeCommand(b)
		if herr != nil || again.SensorID != c.SensorID || again.Action != c.Action || !sameJSON(again.Params, c.Params) {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, herr)
		}
	})
}

// sameJSON compares two JSON values ignoring insignificant white space;
// nil and null are the same (absent params).
func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}
