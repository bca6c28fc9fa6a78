package hub

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// timers captures the hub's expiry timers so a test can fire them.
type timers struct {
	mu sync.Mutex
	fs []func()
	ds []time.Duration
}

func (tm *timers) afterFunc(d time.Duration, f func()) func() bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.fs = append(tm.fs, f)
	tm.ds = append(tm.ds, d)
	return func() bool { return true }
}

func (tm *timers) fire(i int) {
	tm.mu.Lock()
	f := tm.fs[i]
	tm.mu.Unlock()
	f()
}

func (tm *timers) count() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.fs)
}

// TestTokenExpiryClosesIdleSocket: a socket that sends nothing is still
// closed when its token expires, with 4001 after an auth_error.
func TestTokenExpiryClosesIdleSocket(t *testing.T) {
	tm := &timers{}
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.afterFunc = tm.afterFunc }})
	c := env.connect("ann", model.RoleViewer)
	env.eventually("the expiry timer is armed", func() bool { return tm.count() == 1 })
	if d := tm.ds[0]; d <= 59*time.Minute || d > time.Hour {
		t.Errorf("expiry timer in %s, want the token's remaining hour", d)
	}
	tm.fire(0)
	msgs := c.expectClosedWith(protocol.CloseAuthFailed)
	if len(msgs) != 1 || msgs[0].Type != "auth_error" {
		t.Fatalf("before the close: %v, want one auth_error", msgs)
	}
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonTokenExpired); got != 1 {
		t.Errorf("disconnects{reason=token_expired} = %v", got)
	}
}

// TestReauthRefreshesToken: a fresh token sent on the open connection
// replaces the old one, so the old one's expiry closes nothing; a token
// of another user, or a bad one, changes nothing.
func TestReauthRefreshesToken(t *testing.T) {
	tm := &timers{}
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.afterFunc = tm.afterFunc
		h.Handle("op_only", model.RoleOperator, func(context.Context, protocol.Request) (protocol.Reply, error) {
			return protocol.Reply{Type: "done"}, nil
		})
	}})
	c := env.connect("ann", model.RoleViewer)
	c.send(map[string]any{"type": "op_only", "id": 1})
	c.expectType("error")
	c.send(map[string]any{"type": "auth", "id": "a1", "data": map[string]string{"token": env.token("ann", model.RoleOperator)}})
	m := c.expectType("auth_ok")
	var d struct{ User, Role string }
	if err := json.Unmarshal(m.Data, &d); err != nil || string(m.Ref) != `"a1"` || d.User != "ann" || d.Role != "operator" {
		t.Fatalf("auth_ok = %s", m.raw)
	}
	for _, tc := range []struct{ name, token, code string }{
		{"another user's token", env.token("bob", model.RoleAdmin), protocol.CodeForbidden},
		{"a bad token", "x.y.z", protocol.CodeForbidden},
		{"no token", "", protocol.CodeBadRequest},
	} {
		c.send(map[string]any{"type": "auth", "id": 2, "data": map[string]string{"token": tc.token}})
		m := c.expectType("error")
		var e struct{ Code string }
		if json.Unmarshal(m.Data, &e); e.Code != tc.code {
			t.Errorf("%s: %s, want %s", tc.name, m.raw, tc.code)
		}
	}
	// The new token's role is in force.
	c.send(map[string]any{"type": "op_only", "id": 3})
	c.expectType("done")
	env.eventually("two expiry timers armed", func() bool { return tm.count() == 2 })
	tm.fire(0) // the first token's expiry: superseded
	c.roundTrip(1)
	tm.fire(1)
	c.expectClosedWith(protocol.CloseAuthFailed)
}

// TestRecheckClosesRevokedSessions: after a revocation, every socket of
// that user closes with 4001 "session revoked"; others stay.
func TestRecheckClosesRevokedSessions(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	a1 := env.connect("ann", model.RoleViewer)
	a2 := env.connect("ann", model.RoleViewer)
	b := env.connect("bob", model.RoleViewer)
	env.hub.Recheck(context.Background(), "ann") // nothing revoked yet
	a1.roundTrip(1)
	env.auth.revoke("ann")
	env.hub.Recheck(context.Background(), "ann")
	for _, c := range []*client{a1, a2} {
		msgs := c.expectClosedWith(protocol.CloseAuthFailed)
		if len(msgs) != 1 || msgs[0].Type != "auth_error" {
			t.Errorf("before the close: %v, want one auth_error", msgs)
		}
	}
	b.roundTrip(1)
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonRevoked); got != 2 {
		t.Errorf("disconnects{reason=session_revoked} = %v, want 2", got)
	}
	// A revoked user cannot connect again either.
	c := env.dial(dialOptions{})
	c.auth(env.token("ann", model.RoleViewer))
	c.expectClosedWith(protocol.CloseAuthFailed)
}

// TestConnectionCaps: past the per-user or per-address cap a connection
// is refused with 4029 after an error naming the reason; closing one makes
// room again.
func TestConnectionCaps(t *testing.T) {
	env := newEnv(t, Config{MaxPerUser: 2, MaxPerAddr: 3}, envOptions{})
	connectFrom := func(user, addr string) *client {
		c := env.dial(dialOptions{query: "?addr=" + addr})
		c.auth(env.token(user, model.RoleViewer))
		return c
	}
	a1 := connectFrom("ann", "10.0.0.1")
	a1.expectType("auth_ok")
	a2 := connectFrom("ann", "10.0.0.2")
	a2.expectType("auth_ok")
	a3 := connectFrom("ann", "10.0.0.3")
	if msgs := a3.expectClosedWith(protocol.CloseTooMany); len(msgs) != 1 || msgs[0].Type != "error" {
		t.Fatalf("third connection of ann: %v", msgs)
	}
	for _, u := range []string{"bob", "cid"} {
		connectFrom(u, "10.0.0.1").expectType("auth_ok")
	}
	connectFrom("dan", "10.0.0.1").expectClosedWith(protocol.CloseTooMany) // the address's fourth
	if u, a := env.counter("watchroom_ws_disconnects_total", "reason", reasonTooManyForUser),
		env.counter("watchroom_ws_disconnects_total", "reason", reasonTooManyForAddr); u != 1 || a != 1 {
		t.Errorf("refusals: for user %v, for address %v; want 1 and 1", u, a)
	}
	a1.close(t)
	env.eventually("ann's first connection is gone", func() bool { return env.hub.Stats().ActiveConnections == 3 })
	connectFrom("ann", "10.0.0.1").expectType("auth_ok")
}
