package hub

import (
	"encoding/json"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func TestAuthRejected(t *testing.T) {
	env := newEnv(t, Config{AuthTimeout: 300 * time.Millisecond, PingInterval: 200 * time.Millisecond}, envOptions{})

	otherSecret, err := auth.NewTokens([]byte("another-secret-another-secret-32"), time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	past, err := auth.NewTokens(testSecret, time.Hour, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	issue := func(tk *auth.Tokens) string {
		tok, _, err := tk.Issue("alice", model.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	claims := jwt.MapClaims{"sub": "alice", "role": "admin", "iss": "watchroom", "exp": time.Now().Add(time.Hour).Unix()}
	algNone, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	authMsg := func(tok string) []byte {
		b, _ := json.Marshal(map[string]any{"type": "auth", "data": map[string]string{"token": tok}})
		return b
	}

	tests := []struct {
		name   string
		query  string
		kind   int    // frame type of the first message; 0 sends nothing
		first  []byte // the first message
		reason string // disconnect reason counted
	}{
		{name: "no message in time", reason: reasonAuthTimeout},
		{name: "first message not auth", kind: fws.TextMessage, first: []byte(`{"type":"ping","id":1}`), reason: reasonAuthFailed},
		{name: "invalid JSON", kind: fws.TextMessage, first: []byte(`{"type":"auth",`), reason: reasonAuthFailed},
		{name: "bare ping", kind: fws.TextMessage, first: []byte(`ping`), reason: reasonAuthFailed},
		{name: "binary frame", kind: fws.BinaryMessage, first: authMsg(env.token("alice", model.RoleAdmin)), reason: reasonAuthFailed},
		{name: "missing token", kind: fws.TextMessage, first: []byte(`{"type":"auth","data":{}}`), reason: reasonAuthFailed},
		{name: "no data", kind: fws.TextMessage, first: []byte(`{"type":"auth"}`), reason: reasonAuthFailed},
		{name: "token not a string", kind: fws.TextMessage, first: []byte(`{"type":"auth","data":{"token":42}}`), reason: reasonAuthFailed},
		{name: "garbage token", kind: fws.TextMessage, first: authMsg("not.a.jwt"), reason: reasonAuthFailed},
		{name: "signed with another secret", kind: fws.TextMessage, first: authMsg(issue(otherSecret)), reason: reasonAuthFailed},
		{name: "expired", kind: fws.TextMessage, first: authMsg(issue(past)), reason: reasonAuthFailed},
		{name: "alg none", kind: fws.TextMessage, first: authMsg(algNone), reason: reasonAuthFailed},
		{name: "HS512 with the right secret", kind: fws.TextMessage, first: authMsg(hs512), reason: reasonAuthFailed},
		{name: "token in the query", query: "?token=" + env.token("alice", model.RoleAdmin), kind: fws.TextMessage,
			first: authMsg(env.token("alice", model.RoleAdmin)), reason: reasonAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.counter("watchroom_ws_disconnects_total", "reason", tt.reason)
			c := env.dial(dialOptions{query: tt.query})
			c.t = t
			if tt.kind != 0 {
				c.sendFrame(tt.kind, tt.first)
			}
			msgs := c.expectClosedWith(protocol.CloseAuthFailed)
			if len(msgs) != 1 || msgs[0].Type != "auth_error" {
				t.Fatalf("before the close got %d messages %v, want one auth_error", len(msgs), msgs)
			}
			var d struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(msgs[0].Data, &d); err != nil || d.Message == "" {
				t.Errorf("auth_error data %s: want a message", msgs[0].Data)
			}
			if got := env.counter("watchroom_ws_disconnects_total", "reason", tt.reason); got != before+1 {
				t.Errorf("disconnects{reason=%q} went from %v to %v, want +1", tt.reason, before, got)
			}
		})
	}
	if n := env.hub.Stats().ActiveConnections; n != 0 {
		t.Errorf("active connections %d after refused auths, want 0", n)
	}
}

func TestAuthOK(t *testing.T) {
	env := newEnv(t, Config{AuthTimeout: 300 * time.Millisecond}, envOptions{})
	tok, exp, err := env.tokens.Issue("alice", model.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	c := env.dial(dialOptions{})
	c.auth(tok)
	m := c.expectType("auth_ok")
	var d struct {
		User      string `json:"user"`
		Role      string `json:"role"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.User != "alice" || d.Role != "operator" || d.ExpiresAt != protocol.FormatTime(exp) {
		t.Errorf("auth_ok data %s, want alice, operator, %s", m.Data, protocol.FormatTime(exp))
	}
	if len(m.ID) != 0 || len(m.Ref) != 0 {
		t.Errorf("auth_ok %s carries an id or ref", m.raw)
	}
	// Authenticated connections outlive AuthTimeout.
	time.Sleep(400 * time.Millisecond)
	c.roundTrip(1)
	if got := env.counter("watchroom_ws_connects_total", "", ""); got != 1 {
		t.Errorf("connects_total = %v, want 1", got)
	}
	if n := env.hub.Stats().ActiveConnections; n != 1 {
		t.Errorf("active connections %d, want 1", n)
	}
}

// TestTokenExpiresDuringConnection moves the hub's clock past the token's
// expiry: the next request is answered with auth_error and close 4001.
func TestTokenExpiresDuringConnection(t *testing.T) {
	clock := &fakeClock{}
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.now = clock.now }})
	for i := range 20 { // the order of auth_error and the close must hold every time
		c := env.connect("alice", model.RoleViewer)
		c.roundTrip(1)
		clock.advance(2 * time.Hour)
		c.send(map[string]any{"type": "ping", "id": 2})
		msgs := c.expectClosedWith(protocol.CloseAuthFailed)
		if len(msgs) != 1 || msgs[0].Type != "auth_error" {
			t.Fatalf("run %d: before the close got %v, want one auth_error", i, msgs)
		}
		clock.advance(-2 * time.Hour)
	}
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonTokenExpired); got != 20 {
		t.Errorf("disconnects{reason=token_expired} = %v, want 20", got)
	}
}
