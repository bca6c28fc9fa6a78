package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	fws "github.com/fasthttp/websocket"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// TestInvalidFramesDoNotClose sends bad frames; each gets an error reply
// and the connection still answers a ping afterwards.
func TestInvalidFramesDoNotClose(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	tests := []struct {
		name  string
		kind  int
		frame string
		code  string
		ref   string
	}{
		{"invalid JSON", fws.TextMessage, `{"type":`, protocol.CodeInvalidJSON, ""},
		{"not an object", fws.TextMessage, `[1,2]`, protocol.CodeInvalidJSON, ""},
		{"type not a string", fws.TextMessage, `{"type":5,"id":1}`, protocol.CodeInvalidJSON, "1"},
		{"unknown type", fws.TextMessage, `{"type":"launch","id":3}`, protocol.CodeUnknownType, "3"},
		{"unknown type, string id", fws.TextMessage, `{"type":"launch","id":"x"}`, protocol.CodeUnknownType, `"x"`},
		{"missing type", fws.TextMessage, `{"id":4}`, protocol.CodeBadRequest, "4"},
		{"empty object", fws.TextMessage, `{}`, protocol.CodeBadRequest, ""},
		{"object id", fws.TextMessage, `{"type":"ping","id":{"a":1}}`, protocol.CodeBadRequest, ""},
		{"array id", fws.TextMessage, `{"type":"ping","id":[1]}`, protocol.CodeBadRequest, ""},
		{"bool id", fws.TextMessage, `{"type":"ping","id":true}`, protocol.CodeBadRequest, ""},
		{"binary frame", fws.BinaryMessage, `{"type":"ping","id":5}`, protocol.CodeBadRequest, ""},
		{"auth again with a bad token", fws.TextMessage, `{"type":"auth","id":6,"data":{"token":"x"}}`, protocol.CodeForbidden, "6"},
		{"subscribe without data", fws.TextMessage, `{"type":"subscribe","id":7}`, protocol.CodeBadRequest, "7"},
		{"ack without ref", fws.TextMessage, `{"type":"ack","id":8}`, protocol.CodeBadRequest, "8"},
		{"ack with a non-numeric ref", fws.TextMessage, `{"type":"ack","id":9,"ref":"abc"}`, protocol.CodeBadRequest, "9"},
		{"ack of an unknown id", fws.TextMessage, `{"type":"ack","id":10,"ref":999}`, protocol.CodeNotFound, "10"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			before := env.counter("watchroom_ws_errors_total", "code", tt.code)
			c.sendFrame(tt.kind, []byte(tt.frame))
			c.expectError(tt.code, tt.ref)
			c.roundTrip(100 + i)
			if got := env.counter("watchroom_ws_errors_total", "code", tt.code); got != before+1 {
				t.Errorf("errors_total{code=%q} %v → %v, want +1", tt.code, before, got)
			}
		})
	}
}

func TestFrameTooBig(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		size  int
	}{
		{"default limit", 0, 64<<10 + 1},
		{"configured limit", 1024, 2048},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, Config{ReadLimit: tt.limit}, envOptions{})
			c := env.connect("alice", model.RoleViewer)
			// Just under the limit is fine.
			limit := tt.limit
			if limit == 0 {
				limit = 64 << 10
			}
			under := `{"type":"ping","id":1,"data":"` + strings.Repeat("a", int(limit)-40) + `"}`
			c.sendText(under)
			c.expectType("pong")

			c.sendText(`{"type":"ping","id":2,"data":"` + strings.Repeat("a", tt.size) + `"}`)
			c.expectClosedWith(protocol.CloseTooBig)
			env.eventually("the disconnect is counted", func() bool {
				return env.counter("watchroom_ws_disconnects_total", "reason", reasonTooBig) == 1
			})
		})
	}
}

func TestRateLimit(t *testing.T) {
	env := newEnv(t, Config{Rate: 5, Burst: 5}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	const n = 20
	for i := range n {
		c.send(map[string]any{"type": "ping", "id": i})
	}
	pongs, limited := 0, 0
	for i := range n {
		m := c.next()
		if string(m.Ref) != jsonNumber(i) {
			t.Fatalf("reply %d: %s, want ref %d (replies keep request order)", i, m.raw, i)
		}
		switch {
		case m.Type == "pong":
			pongs++
		case m.Type == "error" && m.errorCode() == protocol.CodeRateLimited:
			limited++
		default:
			t.Fatalf("unexpected reply %s", m.raw)
		}
	}
	if pongs < 5 || limited == 0 {
		t.Errorf("%d pongs, %d rate_limited; want at least the burst of 5 answered and some limited", pongs, limited)
	}
	// Acks count against the same limit (each is a database write).
	for i := range n {
		c.send(map[string]any{"type": "ack", "id": i, "ref": 1000 + i})
	}
	limitedAcks := 0
	for i := range n {
		m := c.next()
		if string(m.Ref) != jsonNumber(i) || m.Type != "error" {
			t.Fatalf("ack reply %d: %s", i, m.raw)
		}
		if m.errorCode() == protocol.CodeRateLimited {
			limitedAcks++
		}
	}
	if limitedAcks == 0 {
		t.Errorf("no ack of %d was rate-limited", n)
	}
	// Bare text pings count against the same limit.
	for range n {
		c.sendText("ping")
	}
	limitedText := 0
	for range n {
		m := c.next()
		if m.Type == "error" && m.errorCode() == protocol.CodeRateLimited {
			limitedText++
		}
	}
	if limitedText == 0 {
		t.Errorf("no text ping was rate-limited")
	}
}

func jsonNumber(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestHandleRoles(t *testing.T) {
	var got []protocol.Request
	gotc := make(chan protocol.Request, 10)
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.Handle("reboot", model.RoleOperator, func(_ context.Context, req protocol.Request) (protocol.Reply, error) {
			gotc <- req
			return protocol.Reply{Type: "rebooting", Data: map[string]string{"sensor_id": "s-5"}}, nil
		})
		h.Handle("refuse", model.RoleViewer, func(context.Context, protocol.Request) (protocol.Reply, error) {
			return protocol.Reply{}, protocol.Errorf(protocol.CodeConflict, "already running")
		})
		h.Handle("crash", model.RoleViewer, func(context.Context, protocol.Request) (protocol.Reply, error) {
			return protocol.Reply{}, errors.New("database on fire")
		})
		h.Handle("silent", model.RoleViewer, func(context.Context, protocol.Request) (protocol.Reply, error) {
			return protocol.Reply{}, nil
		})
	}})

	tests := []struct {
		role  model.Role
		allow bool
	}{
		{model.RoleViewer, false},
		{model.RoleAnalyst, false},
		{model.RoleOperator, true},
		{model.RoleAdmin, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			c := env.connect("u-"+string(tt.role), tt.role)
			c.t = t
			c.sendText(`{"type":"reboot","id":"r1","data":{"sensor_id":"s-5"}}`)
			if !tt.allow {
				c.expectError(protocol.CodeForbidden, `"r1"`)
				return
			}
			m := c.expectType("rebooting")
			if string(m.Ref) != `"r1"` || string(m.Data) != `{"sensor_id":"s-5"}` {
				t.Errorf("reply %s, want ref r1 and the handler's data", m.raw)
			}
			req := <-gotc
			got = append(got, req)
			if req.User != "u-"+string(tt.role) || req.Role != tt.role || req.Type != "reboot" ||
				string(req.ID) != `"r1"` || string(req.Data) != `{"sensor_id":"s-5"}` {
				t.Errorf("handler got %+v", req)
			}
		})
	}
	if len(got) != 2 {
		t.Errorf("handler ran %d times, want 2", len(got))
	}

	c := env.connect("bob", model.RoleViewer)
	c.sendText(`{"type":"refuse","id":1}`)
	c.expectError(protocol.CodeConflict, "1")
	c.sendText(`{"type":"crash","id":2}`)
	m := c.expectError(protocol.CodeInternal, "2")
	if strings.Contains(string(m.Data), "fire") {
		t.Errorf("internal error leaks its cause: %s", m.raw)
	}
	c.sendText(`{"type":"silent","id":3}`)
	if extra := c.roundTrip(4); len(extra) != 0 {
		t.Errorf("a zero Reply sent %v", extra)
	}
}

func TestHandleDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic on a duplicate handler")
		}
	}()
	h := newEnv(t, Config{}, envOptions{}).hub
	h.Handle("ping", model.RoleViewer, nil)
}
