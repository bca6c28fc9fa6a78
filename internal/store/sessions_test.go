package store

import (
	"errors"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// TestTokenRevocation walks a user through every change that must revoke
// their tokens, and checks the token state and the session events each
// one leaves.
func TestTokenRevocation(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	last, err := s.LastSessionEvent(ctx)
	if err != nil || last != 0 {
		t.Fatalf("LastSessionEvent on a new database = %d, %v", last, err)
	}
	state := func() model.TokenState {
		t.Helper()
		st, err := s.TokenState(ctx, "ana", "t1")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	events := func() []model.SessionEvent {
		t.Helper()
		es, err := s.SessionEventsAfter(ctx, last, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 {
			last = es[len(es)-1].ID
		}
		return es
	}
	if st := state(); st.Active || st.Version != 0 || st.Revoked {
		t.Fatalf("unknown user: %+v, want inactive", st)
	}
	steps := []struct {
		name        string
		do          func() error
		wantVersion int64
		wantActive  bool
		wantEvents  int
	}{
		{"create", func() error { return s.UpsertUser(ctx, "ana", model.RoleOperator, "h1") }, 1, true, 0},
		{"same role and hash again", func() error { return s.UpsertUser(ctx, "ana", model.RoleOperator, "h1") }, 1, true, 0},
		{"demote", func() error { return s.UpsertUser(ctx, "ana", model.RoleViewer, "h1") }, 2, true, 1},
		{"new password", func() error { return s.SetPassword(ctx, "ana", "h2") }, 3, true, 1},
		{"disable", func() error { return s.SetUserDisabled(ctx, "ana", true) }, 4, false, 1},
		{"enable", func() error { return s.SetUserDisabled(ctx, "ana", false) }, 4, true, 1},
		{"delete", func() error { return s.DeleteUser(ctx, "ana") }, 0, false, 1},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := state()
		if got.Version != st.wantVersion || got.Active != st.wantActive || got.Revoked {
			t.Errorf("%s: state %+v, want version %d active %v", st.name, got, st.wantVersion, st.wantActive)
		}
		es := events()
		if len(es) != st.wantEvents {
			t.Errorf("%s: %d session events, want %d", st.name, len(es), st.wantEvents)
		}
		for _, e := range es {
			if e.User != "ana" || e.JTI != "" {
				t.Errorf("%s: event %+v, want one for all of ana's tokens", st.name, e)
			}
		}
		if st.name == "disable" {
			if _, err := s.User(ctx, "ana"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a disabled user can still be looked up for login: %v", err)
			}
		}
	}
	for _, f := range []func() error{
		func() error { return s.SetPassword(ctx, "nobody", "h") },
		func() error { return s.SetUserDisabled(ctx, "nobody", true) },
		func() error { return s.DeleteUser(ctx, "nobody") },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Errorf("change of an unknown user: %v, want ErrNotFound", err)
		}
	}

	// Logout: one token revoked, the user's others not.
	if err := s.UpsertUser(ctx, "bob", model.RoleViewer, "h"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "bob", "t9", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.TokenState(ctx, "bob", "t9"); !st.Revoked || !st.Active {
		t.Errorf("revoked token state %+v", st)
	}
	if st, _ := s.TokenState(ctx, "bob", "t10"); st.Revoked {
		t.Errorf("another token of bob is revoked: %+v", st)
	}
	if es := events(); len(es) != 1 || es[0].User != "bob" || es[0].JTI != "t9" {
		t.Errorf("logout events %+v", es)
	}
	if err := s.RevokeToken(ctx, "bob", "t9", time.Now().Add(time.Hour)); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
}
