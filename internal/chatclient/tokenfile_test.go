package chatclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func savedFor(server, user, token string, expires time.Time) Saved {
	return Saved{Server: server, Login: Login{Token: token, ExpiresAt: expires, User: user, Role: "analyst"}}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestTokenFileRoundTripIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	want := savedFor("http://127.0.0.1:8080", "ann", "tok-1", t0)
	if err := SaveToken(path, want); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("saved with mode %04o, want 0600", m)
	}
	got, err := LoadToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Server != want.Server || got.Token != want.Token || got.User != want.User || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("loaded %+v, want %+v", got, want)
	}

	// Saving over a file others could read leaves one they cannot, and
	// no temporary file behind.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveToken(path, savedFor(want.Server, "ann", "tok-2", t0)); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("saved over a 0644 file with mode %04o, want 0600", m)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after saving, want the token file alone", len(entries))
	}
}

func TestLoadTokenRefusesFilesOthersMayRead(t *testing.T) {
	for _, perm := range []fs.FileMode{0o644, 0o640, 0o604, 0o620, 0o602, 0o660} {
		path := filepath.Join(t.TempDir(), "token")
		if err := SaveToken(path, savedFor("http://h:1", "ann", "tok", t0)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		_, err := LoadToken(path)
		if err == nil {
			t.Fatalf("mode %04o: loaded", perm)
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("permissions %04o", perm)) || !strings.Contains(msg, "0600") {
			t.Fatalf("mode %04o: unclear refusal %q", perm, msg)
		}
	}
}

func TestLoadTokenMissingAndBroken(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadToken(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	for name, body := range map[string]string{"garbage": "not json", "empty": "{}"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadToken(path); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: %v, want an error naming the file", name, err)
		}
	}
	if _, err := LoadToken(dir); err == nil {
		t.Fatal("a directory loaded as a token file")
	}
}

// refreshServer answers POST /api/refresh: a fresh token for "tok-good",
// 401 for anything else (revoked or expired).
func refreshServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/refresh" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer tok-good" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"session revoked"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(Login{Token: "tok-fresh", ExpiresAt: t0.Add(time.Hour), User: "ann", Role: "analyst"})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestSavedTokenSkipsThePassword(t *testing.T) {
	srv, _ := refreshServer(t)
	path := filepath.Join(t.TempDir(), "token")
	s := savedFor(srv.URL, "ann", "tok-good", t0.Add(time.Minute))
	m := New(Options{URL: srv.URL, TokenFile: path, Saved: &s, Now: func() time.Time { return t0 }})
	if !m.busy || m.saved == nil {
		t.Fatalf("a valid saved token is not being tried (busy %v, err %q)", m.busy, m.loginErr)
	}
	res := m.trySaved()()
	next, _ := m.Update(res)
	m = next.(Model)
	defer m.Close()
	if m.screen != screenMain || m.me.Token != "tok-fresh" {
		t.Fatalf("not signed in with the fresh token: screen %v, err %q", m.screen, m.loginErr)
	}
	// The fresh token replaced the saved one, still owner-only.
	got, err := LoadToken(path)
	if err != nil || got.Token != "tok-fresh" || got.Server != srv.URL {
		t.Fatalf("token file after the start: %+v, %v", got, err)
	}
	if md := mode(t, path); md != 0o600 {
		t.Fatalf("mode %04o", md)
	}
}

func TestRevokedSavedTokenFallsBackToThePassword(t *testing.T) {
	srv, calls := refreshServer(t)
	s := savedFor(srv.URL, "ann", "tok-revoked", t0.Add(time.Minute))
	m := New(Options{URL: srv.URL, TokenFile: filepath.Join(t.TempDir(), "token"), Saved: &s, Now: func() time.Time { return t0 }})
	next, _ := m.Update(m.trySaved()())
	m = next.(Model)
	if calls.Load() != 1 {
		t.Fatalf("refresh asked %d times, want 1", calls.Load())
	}
	if m.screen != screenLogin || m.busy || m.focus != 2 || m.fields[1].Value() != "ann" {
		t.Fatalf("not at the password prompt for ann: screen %v busy %v focus %d user %q", m.screen, m.busy, m.focus, m.fields[1].Value())
	}
	if !strings.Contains(m.loginErr, "not accepted") || !strings.Contains(m.loginErr, "session revoked") {
		t.Fatalf("login screen says %q", m.loginErr)
	}
	if !strings.Contains(m.View(), "session revoked") {
		t.Fatalf("the reason is not shown:\n%s", m.View())
	}
}

func TestUnusableSavedTokenIsNotSent(t *testing.T) {
	srv, calls := refreshServer(t)
	now := func() time.Time { return t0 }
	cases := []struct {
		name, url, user string
		saved           Saved
		want            string
	}{
		{"expired", srv.URL, "", savedFor(srv.URL, "ann", "tok-good", t0), "expired"},
		{"another server", "http://127.0.0.1:1", "", savedFor(srv.URL, "ann", "tok-good", t0.Add(time.Hour)), "not this server"},
		{"another user", srv.URL, "bob", savedFor(srv.URL, "ann", "tok-good", t0.Add(time.Hour)), "ann's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.saved
			m := New(Options{URL: c.url, User: c.user, Saved: &s, TokenFile: "unused", Now: now})
			if m.saved != nil || m.busy {
				t.Fatalf("the saved token would be tried")
			}
			if !strings.Contains(m.loginErr, c.want) {
				t.Fatalf("login screen says %q, want %q", m.loginErr, c.want)
			}
		})
	}
	if calls.Load() != 0 {
		t.Fatalf("the server was asked %d times", calls.Load())
	}
}
