package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRevokedSessionsEndAtOnce is the attack of the security review run
// against the real server: a user keeps a token and an open socket after
// an administrator demotes them, changes their password, disables or
// deletes them (with `watchroom user …`, another process in real life), or
// after they log out. Each time the socket closes with 4001 and the token
// is refused on REST.
func TestRevokedSessionsEndAtOnce(t *testing.T) {
	e := setup(t)
	admin := func(args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"user"}, args...), []string{"WATCHROOM_DATABASE_URL=" + e.db},
			strings.NewReader("a-new-password\n"), &out, &errOut); err != nil {
			t.Fatalf("user %v: %v %s", args, err, errOut.String())
		}
	}
	for _, tc := range []struct {
		name   string
		revoke func(user, token string)
	}{
		{"demoted", func(u, _ string) { admin("add", "--name", u, "--role", "viewer", "--password-stdin") }},
		{"password changed", func(u, _ string) { admin("passwd", "--name", u, "--password-stdin") }},
		{"disabled", func(u, _ string) { admin("disable", "--name", u) }},
		{"deleted", func(u, _ string) { admin("delete", "--name", u) }},
		{"logged out", func(_, tok string) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.srv.addr+"/api/logout", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("logout: %v %v", resp, err)
			}
			resp.Body.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "op-" + strings.ReplaceAll(tc.name, " ", "-")
			addUser(t, e.db, user, "operator", "op-password")
			tok := login(t, e.srv.addr, user, "op-password")
			c := connect(t, e.srv.addr, tok)
			if code := getJSON(t, e.srv.addr, "/api/me", tok, nil); code != http.StatusOK {
				t.Fatalf("/api/me with a fresh token: %d", code)
			}
			tc.revoke(user, tok)
			if code := c.closeCode(10 * time.Second); code != 4001 {
				t.Errorf("socket closed with %d, want 4001", code)
			}
			if code := getJSON(t, e.srv.addr, "/api/me", tok, nil); code != http.StatusUnauthorized {
				t.Errorf("/api/me after %s: %d, want 401", tc.name, code)
			}
			// And the token cannot open a new socket.
			again := dial(t, e.srv.addr, "")
			again.send(map[string]any{"type": "auth", "data": map[string]string{"token": tok}})
			if code := again.closeCode(5 * time.Second); code != 4001 {
				t.Errorf("new socket with the revoked token: close %d, want 4001", code)
			}
		})
	}
	// alice was never touched: her session lives on.
	if code := getJSON(t, e.srv.addr, "/api/me", e.token, nil); code != http.StatusOK {
		t.Errorf("an untouched user's token: %d", code)
	}
}

// TestConnectionFloodAndAckFlood is the abuse of the security review run
// against the real server: one user opening sockets without end (1,000
// were accepted) is refused past WATCHROOM_WS_MAX_PER_USER with 4029, and a
// flood of acks (96,000 database deletes in 10 s) is rate-limited like any
// request.
func TestConnectionFloodAndAckFlood(t *testing.T) {
	e := setup(t, "WATCHROOM_WS_MAX_PER_USER=5", "WATCHROOM_WS_RATE=0.01", "WATCHROOM_WS_BURST=5")
	var open []*wsClient
	for range 5 {
		open = append(open, connect(t, e.srv.addr, e.token))
	}
	extra := dial(t, e.srv.addr, "")
	extra.send(map[string]any{"type": "auth", "data": map[string]string{"token": e.token}})
	if m := extra.next(5 * time.Second); m.Type != "error" || !strings.Contains(string(m.Data), "too_many_connections") {
		t.Fatalf("sixth socket got %s, want a too_many_connections error", m.Raw)
	}
	if code := extra.closeCode(5 * time.Second); code != 4029 {
		t.Fatalf("sixth socket closed with %d, want 4029", code)
	}
	// Acks count against the request rate: with a burst of 5 and one more
	// every 100 s, 45 of 50 are refused.
	c := open[0]
	for i := range 50 {
		c.send(map[string]any{"type": "ack", "id": i, "ref": 100000 + i})
	}
	limited := 0
	for range 50 {
		m := c.nextOf("error", 5*time.Second)
		if strings.Contains(string(m.Data), "rate_limited") {
			limited++
		}
	}
	if limited != 45 {
		t.Errorf("%d of 50 acks rate-limited, want all but the burst of 5", limited)
	}
}
