package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

// This file holds what the package's tests share: a real store on a fresh
// PostgreSQL database, real tokens, a fake Hub for the REST tests, and
// helpers that send requests through app.Fiber().Test.

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// testPassword is long enough for auth.HashPassword.
const testPassword = "correct horse battery"

// fakeHub is a Hub whose Stats are fixed. The REST tests never upgrade, so
// Serve only closes the connection.
type fakeHub struct{ stats hub.Stats }

func (h *fakeHub) Serve(_ context.Context, ws *fws.Conn, _ hub.ServeOptions) { _ = ws.Close() }
func (h *fakeHub) Stats() hub.Stats                                          { return h.stats }

var _ Hub = (*fakeHub)(nil)

// newStore returns a Store on a fresh, migrated database, dropped when the
// test ends.
func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	dbURL := pgtest.NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, dbURL, nil); err != nil {
		tb.Fatalf("store.Migrate: %v", err)
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(st.Close) // runs before pgtest drops the database
	return st
}

func newTokens(tb testing.TB, now func() time.Time) *auth.Tokens {
	tb.Helper()
	tk, err := auth.NewTokens(testSecret, time.Hour, now)
	if err != nil {
		tb.Fatalf("auth.NewTokens: %v", err)
	}
	return tk
}

// plainSessions checks signatures and claims only, for the REST tests that
// issue tokens for users who are not in the database; revocation is tested
// with auth.Sessions in sessions_test.go.
type plainSessions struct{ *auth.Tokens }

func (p plainSessions) Issue(_ context.Context, user string, role model.Role) (string, time.Time, error) {
	return p.Tokens.Issue(user, role)
}
func (p plainSessions) Verify(_ context.Context, tok string) (auth.Claims, error) {
	return p.Tokens.Verify(tok)
}
func (plainSessions) Check(context.Context, auth.Claims) error  { return nil }
func (plainSessions) Revoke(context.Context, auth.Claims) error { return nil }

// testCtx is bounded in time so a hung query fails instead of hanging.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// testEnv is one App over a real store.
type testEnv struct {
	app    *App
	store  *store.Store
	tokens *auth.Tokens
	reg    *prometheus.Registry
	hub    *fakeHub
}

// newEnv builds an App on st; edit adjusts the Config before New.
func newEnv(t *testing.T, st *store.Store, edit func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{
		store:  st,
		tokens: newTokens(t, time.Now),
		reg:    prometheus.NewRegistry(),
		hub: &fakeHub{stats: hub.Stats{
			ActiveConnections: 3, MessagesPerMinute: 120, TotalMessages: 4567,
			FailedDeliveries: 2, AvgConnectionSeconds: 12.5, UptimeSeconds: 3600, ClosedConnectionCount: 9,
		}},
	}
	cfg := Config{
		Store: st, Tokens: plainSessions{e.tokens}, Hub: e.hub,
		Gatherer: e.reg, Registerer: e.reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	e.app = New(cfg)
	return e
}

// addUser stores a user with testPassword. The hash is what
// auth.HashPassword makes but at bcrypt's minimum cost: auth.CheckPassword
// reads the cost from the hash, and under -race one check at the production
// cost takes seconds.
func addUser(t *testing.T, st *store.Store, name string, role model.Role) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	if err := st.UpsertUser(testCtx(t), name, role, string(h)); err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
}

// token returns a valid token for user with role.
func (e *testEnv) token(t *testing.T, user string, role model.Role) string {
	t.Helper()
	tok, _, err := e.tokens.Issue(user, role)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// response is a finished response with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return http.StatusText(r.status) + " " + string(r.body) }

// do sends one request through app.Fiber().Test. body, when not nil, is sent
// as JSON (a string is sent as is); token, when set, as a bearer token.
func (e *testEnv) do(t *testing.T, method, target, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(t, req)
}

// newRequest builds a request with a string body ("" for none).
func newRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return httptest.NewRequest(method, target, rd)
}

func (e *testEnv) send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := e.app.Fiber().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// apiErrorBody is the JSON of every error.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks status, the JSON error shape and code, and that the
// message contains msgPart.
func wantError(t *testing.T, r response, status int, code, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var e apiErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code = %q, want %q (body %s)", e.Error.Code, code, r.body)
	}
	if e.Error.Message == "" || !strings.Contains(e.Error.Message, msgPart) {
		t.Errorf("error message = %q, want it to contain %q", e.Error.Message, msgPart)
	}
}

// decode unmarshals a 200 response's body into v.
func decode(t *testing.T, r response, v any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}
