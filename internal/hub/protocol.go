package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// envelope is every frame's shape. ID and Ref stay raw so that a client's
// string or number id comes back exactly as sent.
type envelope struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

func mustEncode(typ string, ref json.RawMessage, data any) []byte {
	b, err := protocol.Encode(typ, nil, ref, data)
	if err != nil {
		// Only our own fixed types reach here; failing to encode them is a bug.
		panic(err)
	}
	return b
}

func errorMessage(ref json.RawMessage, e *protocol.Error) []byte {
	return mustEncode("error", ref, map[string]string{"code": e.Code, "message": e.Message})
}

// parseRequest decodes one client frame. The id must be a JSON string or
// number, so it can be echoed safely as ref.
func parseRequest(b []byte) (envelope, *protocol.Error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		// A type error (say "type":5) still fills the other fields; keep
		// the id for the error's ref only if it is one we may echo.
		if !validID(env.ID) {
			env.ID = nil
		}
		return env, protocol.Errorf(protocol.CodeInvalidJSON, "frame is not a JSON object: %v", trimErr(err))
	}
	if len(env.ID) > 0 && !validID(env.ID) {
		bad := env.ID
		env.ID = nil
		return env, protocol.Errorf(protocol.CodeBadRequest, "id must be a string or a number, not %s", truncate(bad, 32))
	}
	if env.Type == "" {
		return env, protocol.Errorf(protocol.CodeBadRequest, `frame has no "type"`)
	}
	return env, nil
}

func validID(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || len(raw) > 128 {
		return false
	}
	switch raw[0] {
	case '"':
		var s string
		return json.Unmarshal(raw, &s) == nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, err := strconv.ParseFloat(string(raw), 64)
		return err == nil
	}
	return false
}

func trimErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return err.Error()
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// encodeReading returns the reading message of r (model.Reading's JSON:
// ts to the microsecond, the reading's key).
func encodeReading(r model.Reading) []byte { return mustEncode("reading", nil, r) }
