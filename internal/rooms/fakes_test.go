package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/protocol"
	"github.com/watchroom/watchroom/internal/store"
)

// sent is one message the fake hub was asked to deliver.
type sent struct {
	users    []string // nil for a broadcast
	typ      string
	data     json.RawMessage
	reliable bool
	local    bool // SendToLocalUsers: not relayed to other instances
}

// fakeHub records what Rooms sends, and routes requests like the hub:
// role check, then the handler.
type fakeHub struct {
	mu        sync.Mutex
	sent      []sent
	routes    map[string]route
	presence  protocol.PresenceListener
	failSend  error // returned by SendReliableToUsers when set
	replayers map[string]protocol.Replayer
}

type route struct {
	min model.Role
	fn  protocol.HandlerFunc
}

var (
	_ Hub    = (*fakeHub)(nil)
	_ Router = (*fakeHub)(nil)
)

func newFakeHub() *fakeHub { return &fakeHub{routes: map[string]route{}} }

func (h *fakeHub) Handle(typ string, min model.Role, fn protocol.HandlerFunc) {
	if _, dup := h.routes[typ]; dup {
		panic("duplicate " + typ)
	}
	h.routes[typ] = route{min, fn}
}

func (h *fakeHub) SetPresence(l protocol.PresenceListener) { h.presence = l }

func (h *fakeHub) HandleResume(stream string, fn protocol.Replayer) {
	if h.replayers == nil {
		h.replayers = map[string]protocol.Replayer{}
	}
	h.replayers[stream] = fn
}

func (h *fakeHub) record(users []string, typ string, data any, reliable bool) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, sent{users: slices.Clone(users), typ: typ, data: b, reliable: reliable})
}

func (h *fakeHub) SendToUsers(users []string, typ string, data any) error {
	h.record(users, typ, data, false)
	return nil
}

func (h *fakeHub) SendToLocalUsers(users []string, typ string, data any) error {
	h.record(users, typ, data, false)
	h.mu.Lock()
	h.sent[len(h.sent)-1].local = true
	h.mu.Unlock()
	return nil
}

func (h *fakeHub) SendReliableToUsers(_ context.Context, users []string, typ string, data any) error {
	if h.failSend != nil {
		return h.failSend
	}
	h.record(users, typ, data, true)
	return nil
}

func (h *fakeHub) Broadcast(typ string, data any) error {
	h.record(nil, typ, data, false)
	return nil
}

// take returns what was sent since the last take.
func (h *fakeHub) take() []sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.sent
	h.sent = nil
	return out
}

// call runs one request as the hub would.
func (h *fakeHub) call(t testing.TB, user string, role model.Role, typ string, data any) (protocol.Reply, error) {
	t.Helper()
	rt, ok := h.routes[typ]
	if !ok {
		t.Fatalf("no handler for %s", typ)
	}
	if !role.AtLeast(rt.min) {
		return protocol.Reply{}, protocol.Errorf(protocol.CodeForbidden, "%s needs role %s", typ, rt.min)
	}
	var raw json.RawMessage
	switch d := data.(type) {
	case nil:
	case string:
		raw = json.RawMessage(d)
	default:
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		raw = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rt.fn(ctx, protocol.Request{User: user, Role: role, Type: typ, ID: json.RawMessage(`"r1"`), Data: raw})
}

// fakeClock drives the typing throttle and the grace timers.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped || t.fired {
			return false
		}
		t.stopped = true
		return true
	}
}

// pending counts timers neither stopped nor fired.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// advance moves the clock and runs the timers that came due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.at.After(c.now) {
			t.fired = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// fakeAlerts knows the alerts in ids.
type fakeAlerts struct{ ids map[int64]bool }

func (a fakeAlerts) AlertExists(_ context.Context, id int64) (bool, error) { return a.ids[id], nil }

type env struct {
	st    *store.Store
	hub   *fakeHub
	clock *fakeClock
	rooms *Rooms
	reg   *prometheus.Registry
}

// newEnv returns Rooms over a fresh database with users ana (analyst), bob
// (analyst), cid (analyst), vic (viewer) and root (admin), registered on a
// fake hub.
func newEnv(t testing.TB) *env {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	for u, role := range map[string]model.Role{"ana": model.RoleAnalyst, "bob": model.RoleAnalyst, "cid": model.RoleAnalyst, "vic": model.RoleViewer, "root": model.RoleAdmin} {
		if err := st.UpsertUser(ctx, u, role, "x"); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{st: st, hub: newFakeHub(), clock: newFakeClock(), reg: prometheus.NewRegistry()}
	e.rooms = New(Config{
		OfflineGrace: 10 * time.Second,
		Now:          e.clock.Now,
		AfterFunc:    e.clock.AfterFunc,
	}, st, e.hub, fakeAlerts{ids: map[int64]bool{7: true}}, e.reg, nil)
	e.rooms.Register(e.hub)
	return e
}

// connect marks users online without running presence (Run not started).
func (e *env) connect(users ...string) {
	for _, u := range users {
		e.hub.presence.Online(u)
	}
}

func errCode(err error) string {
	var he *protocol.Error
	if errors.As(err, &he) {
		return he.Code
	}
	if err != nil {
		return "internal: " + err.Error()
	}
	return ""
}
