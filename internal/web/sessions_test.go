package web

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
)

// TestSessionsRevoked performs, against the REST API over the real store,
// what the attack did: a token kept after the user was demoted, given a
// new password, disabled or deleted, or after logging out. Each must be
// refused at once.
func TestSessionsRevoked(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	var sessions *auth.Sessions
	e := newEnv(t, st, func(c *Config) {
		sessions = auth.NewSessions(c.Tokens.(plainSessions).Tokens, st, time.Now)
		c.Tokens = sessions
	})
	// Tokens as a login issues them (the login limiter is tested apart).
	login := func(user string) string {
		t.Helper()
		tok, _, err := sessions.Issue(testCtx(t), user, model.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	me := func(tok string) int {
		t.Helper()
		return e.do(t, http.MethodGet, "/api/me", tok, nil).status
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("another password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, tc := range []struct {
		name   string
		revoke func(user, tok string) error
	}{
		{"demoted", func(u, _ string) error { return st.UpsertUser(ctx, u, model.RoleViewer, mustHash(t)) }},
		{"new password", func(u, _ string) error { return st.SetPassword(ctx, u, string(hash)) }},
		{"disabled", func(u, _ string) error { return st.SetUserDisabled(ctx, u, true) }},
		{"deleted", func(u, _ string) error { return st.DeleteUser(ctx, u) }},
		{"logged out", func(_, tok string) error {
			if r := e.do(t, http.MethodPost, "/api/logout", tok, nil); r.status != http.StatusNoContent {
				t.Fatalf("logout: %v", r)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u-" + string(rune('a'+len(tc.name)))
			addUser(t, st, user, model.RoleOperator)
			tok := login(user)
			other := login(user)
			if me(tok) != http.StatusOK {
				t.Fatal("a fresh token is refused")
			}
			if err := tc.revoke(user, tok); err != nil {
				t.Fatal(err)
			}
			sessions.Forget(user) // what the watcher does when it sees the revocation
			if got := me(tok); got != http.StatusUnauthorized {
				t.Errorf("after %s: /api/me = %d, want 401", tc.name, got)
			}
			wantOther := http.StatusUnauthorized
			if tc.name == "logged out" {
				wantOther = http.StatusOK // only that one session ended
			}
			if got := me(other); got != wantOther {
				t.Errorf("after %s: the user's other token gets %d, want %d", tc.name, got, wantOther)
			}
		})
	}
	t.Run("refresh", func(t *testing.T) {
		addUser(t, st, "rita", model.RoleOperator)
		tok := login("rita")
		r := e.do(t, http.MethodPost, "/api/refresh", tok, nil)
		var got struct{ Token, Role string }
		decode(t, r, &got)
		if got.Token == "" || got.Token == tok || got.Role != "operator" || me(got.Token) != http.StatusOK {
			t.Fatalf("refresh = %v", r)
		}
	})
}

func mustHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
