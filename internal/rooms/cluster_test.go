package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// bus stands for the backplane between instances: what one publishes is
// queued, and pump hands it to every other one, in order.
type bus struct {
	mu    sync.Mutex
	q     []busMsg
	nodes map[string]*Rooms
	lose  bool // drop what is published while set
}

type busMsg struct {
	from     string
	presence *PresenceUpdate
	room     string
}

type busNode struct {
	b      *bus
	origin string
}

var _ Cluster = busNode{}

func (n busNode) PublishPresence(p PresenceUpdate) { n.b.put(busMsg{from: n.origin, presence: &p}) }
func (n busNode) PublishRoomChange(room string)    { n.b.put(busMsg{from: n.origin, room: room}) }

func (b *bus) put(m busMsg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.lose {
		b.q = append(b.q, m)
	}
}

// pump delivers until nothing is queued (answers included).
func (b *bus) pump() {
	for {
		b.mu.Lock()
		q := b.q
		b.q = nil
		b.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, m := range q {
			for origin, r := range b.nodes {
				if origin == m.from {
					continue
				}
				if m.presence != nil {
					r.PeerPresence(*m.presence)
				} else {
					r.PeerRoomChanged(m.room)
				}
			}
		}
	}
}

// instance is one Rooms of a cluster with its own hub and clock.
type instance struct {
	rooms *Rooms
	hub   *fakeHub
	clock *fakeClock
}

// newCluster returns two instances, web-1 and web-2, over one database,
// joined by a bus, their Run loops running, each having heard the other's
// (empty) full set.
func newCluster(t *testing.T) (*env, *bus, *instance, *instance) {
	t.Helper()
	e := newEnv(t)
	b := &bus{nodes: map[string]*Rooms{}}
	mk := func(origin string) *instance {
		in := &instance{hub: newFakeHub(), clock: newFakeClock()}
		in.rooms = New(Config{OfflineGrace: 10 * time.Second, Now: in.clock.Now, AfterFunc: in.clock.AfterFunc},
			e.st, in.hub, nil, prometheus.NewRegistry(), nil)
		in.rooms.Register(in.hub)
		in.rooms.SetCluster(busNode{b: b, origin: origin}, origin)
		b.nodes[origin] = in.rooms
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- in.rooms.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		waitTimers(t, in.clock, 1) // the full set's ticker
		return in
	}
	a, c := mk("web-1"), mk("web-2")
	a.rooms.Resync()
	c.rooms.Resync()
	b.pump()
	return e, b, a, c
}

// A user who moves from one instance to the other within the grace is
// never announced offline; each instance announces presence to its own
// connections only, once.
func TestClusterPresenceMoveWithinGrace(t *testing.T) {
	_, b, a, c := newCluster(t)
	a.hub.presence.Online("ana")
	b.pump()
	waitPresence(t, a.rooms, "online", 1)
	waitPresence(t, c.rooms, "online", 1)
	c.hub.presence.Online("bob")
	b.pump()
	for name, in := range map[string]*instance{"web-1": a, "web-2": c} {
		for _, s := range waitSent(t, in.hub, 2) { // general and alerts
			ru := decodeData[roomUser](t, s)
			if s.typ != "user_joined" || ru.User != "bob" || !s.local || !slices.Equal(s.users, []string{"ana"}) {
				t.Errorf("%s sent %s %+v to %v (local %v); want user_joined of bob to its own connections of ana", name, s.typ, ru, s.users, s.local)
			}
		}
		if got := in.rooms.onlineUsers(); !slices.Equal(got, []string{"ana", "bob"}) {
			t.Errorf("%s: online %v, want ana and bob", name, got)
		}
	}

	// bob's connection to web-2 closes, and he is back on web-1 within
	// the grace.
	c.hub.presence.Offline("bob")
	b.pump()
	waitTimers(t, a.clock, 2) // the ticker and bob's grace
	waitTimers(t, c.clock, 2)
	a.clock.advance(5 * time.Second)
	c.clock.advance(5 * time.Second)
	a.hub.presence.Online("bob")
	b.pump()
	for name, in := range map[string]*instance{"web-1": a, "web-2": c} {
		waitPresence(t, in.rooms, "reconnect_in_grace", 1)
		waitTimers(t, in.clock, 1)
		if got := in.hub.take(); len(got) != 0 {
			t.Errorf("%s sent %+v for a move within the grace", name, got)
		}
	}
}

// An instance that goes (its will, or its goodbye) takes its users
// offline on the others after the grace; one silent for the TTL too.
func TestClusterPeerGoneAndSilent(t *testing.T) {
	_, b, a, c := newCluster(t)
	a.hub.presence.Online("ana")
	waitPresence(t, a.rooms, "online", 1)
	c.hub.presence.Online("bob")
	c.hub.presence.Online("cid")
	b.pump()
	waitSent(t, a.hub, 2+2) // bob and cid joined, in general and alerts
	waitPresence(t, a.rooms, "online", 3)
	a.hub.take()

	// web-2's will: bob and cid are gone.
	a.rooms.PeerPresence(c.rooms.GoneUpdate())
	waitTimers(t, a.clock, 3)
	a.clock.advance(10 * time.Second) // the grace, and a tick
	left := waitSent(t, a.hub, 4)
	for _, s := range left {
		if s.typ != "user_left" || decodeData[roomUser](t, s).Reason != reasonOffline || !slices.Equal(s.users, []string{"ana"}) {
			t.Errorf("sent %s %s to %v; want user_left, offline, to ana", s.typ, s.data, s.users)
		}
	}
	if got := a.rooms.onlineUsers(); !slices.Equal(got, []string{"ana"}) {
		t.Errorf("online %v, want ana", got)
	}

	// web-2 comes back (a full set): they are online again, announced.
	c.rooms.Resync()
	b.pump()
	waitSent(t, a.hub, 4)
	// Then it falls silent: after the TTL its users go offline.
	b.lose = true
	a.rooms.mu.Lock()
	a.rooms.expirePeersLocked(a.clock.Now().Add(29 * time.Second))
	a.rooms.mu.Unlock()
	if got := a.rooms.onlineUsers(); !slices.Equal(got, []string{"ana", "bob", "cid"}) {
		t.Fatalf("online %v before the TTL, want ana, bob and cid", got)
	}
	a.rooms.mu.Lock()
	a.rooms.expirePeersLocked(a.clock.Now().Add(30 * time.Second))
	a.rooms.mu.Unlock()
	if got := a.rooms.onlineUsers(); !slices.Equal(got, []string{"ana"}) {
		t.Errorf("online %v after the TTL, want ana", got)
	}
	if got := testutil.ToFloat64(a.rooms.m.presencePeer.WithLabelValues("expired")); got != 1 {
		t.Errorf("presence peer updates{expired} = %v, want 1", got)
	}
}

// A delta that does not follow the last one seen is ignored; the next
// full set repairs the view.
func TestClusterPresenceOutOfSequence(t *testing.T) {
	_, b, a, c := newCluster(t)
	b.lose = true
	c.hub.presence.Online("bob") // lost
	b.lose = false
	c.hub.presence.Online("cid") // out of sequence on web-1
	b.pump()
	if got := a.rooms.onlineUsers(); len(got) != 0 {
		t.Errorf("online %v after a lost delta, want nobody yet", got)
	}
	if got := testutil.ToFloat64(a.rooms.m.presencePeer.WithLabelValues("out_of_sequence")); got != 1 {
		t.Errorf("out_of_sequence = %v, want 1", got)
	}
	c.clock.advance(DefaultPresenceEvery) // web-2's tick: its full set
	for deadline := time.Now().Add(5 * time.Second); len(a.rooms.onlineUsers()) != 2; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("online %v after the full set, want bob and cid", a.rooms.onlineUsers())
		}
		b.pump()
	}
}

// A room's members cached on one instance are dropped when another
// changes them.
func TestClusterRoomChangeDropsTheCopy(t *testing.T) {
	_, b, a, c := newCluster(t)
	ctx := context.Background()
	if _, err := a.hub.call(t, "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	b.pump()
	if _, ok, _ := c.rooms.chatMembership(ctx, "ops", "bob"); ok {
		t.Fatal("bob a member before joining")
	}
	if _, err := a.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	b.pump()
	if _, ok, err := c.rooms.chatMembership(ctx, "ops", "bob"); err != nil || !ok {
		t.Errorf("web-2 does not see bob's join on web-1: %v %v", ok, err)
	}
}

// In a cluster a replay also carries the messages at or below the cursor
// stored in the last ResumeOverlap: one delivered out of id order is not
// skipped. A single instance replays only what is above the cursor.
func TestClusterReplayOverlap(t *testing.T) {
	e, _, a, _ := newCluster(t)
	ctx := context.Background()
	for range 5 {
		if _, err := e.st.InsertChatMessage(ctx, model.ChatMessage{Room: "general", User: "ana", Content: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	var dms []int64
	for range 3 {
		dm, err := e.st.InsertDirectMessage(ctx, model.DirectMessage{From: "ana", To: "bob", Content: "x"})
		if err != nil {
			t.Fatal(err)
		}
		dms = append(dms, dm.ID)
	}
	ids := func(r protocol.Replay) (out []int64) {
		for _, m := range r.Msgs {
			switch d := m.Data.(type) {
			case model.ChatMessage:
				out = append(out, d.ID)
			case model.DirectMessage:
				out = append(out, d.ID)
			}
		}
		return out
	}
	now := time.Now()
	for _, tt := range []struct {
		name   string
		r      *Rooms
		stream string
		cursor string
		now    time.Time
		want   []int64
	}{
		{"cluster, recent", a.rooms, "rooms", `{"general":3}`, now, []int64{1, 2, 3, 4, 5}},
		{"cluster, old", a.rooms, "rooms", `{"general":3}`, now.Add(ResumeOverlap + time.Minute), []int64{4, 5}},
		{"cluster, from 0", a.rooms, "rooms", `{"general":0}`, now, []int64{1, 2, 3, 4, 5}},
		{"single", e.rooms, "rooms", `{"general":3}`, now, []int64{4, 5}},
		{"cluster, direct", a.rooms, "direct", fmt.Sprint(dms[1]), now, dms},
		{"single, direct", e.rooms, "direct", fmt.Sprint(dms[1]), now, dms[2:]},
	} {
		h := a.hub
		if tt.r == e.rooms {
			h = e.hub
		}
		r, err := h.replayers[tt.stream](ctx, protocol.ReplayRequest{User: "bob", Cursor: json.RawMessage(tt.cursor), Max: 100, Now: tt.now})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := ids(r); !slices.Equal(got, tt.want) {
			t.Errorf("%s: replayed ids %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A full set too large for one message goes in parts, applied once the
// last is in; a set with a part lost is not applied.
func TestClusterFullSetInParts(t *testing.T) {
	_, b, a, c := newCluster(t)
	const n = 5000 // of 24-character names: about 135 KB, three parts
	c.rooms.mu.Lock()
	for i := range n {
		c.rooms.local[fmt.Sprintf("user-with-a-long-name%04d", i)] = struct{}{}
	}
	c.rooms.mu.Unlock()
	var parts []PresenceUpdate
	c.rooms.Resync()
	b.mu.Lock()
	for _, m := range b.q {
		parts = append(parts, *m.presence)
	}
	b.q = nil
	b.mu.Unlock()
	if len(parts) != 3 || parts[0].Parts != 3 || !parts[0].Sync || parts[1].Sync {
		t.Fatalf("full set of %d users in %d messages (parts %d, sync %v %v), want 3 parts, sync on the first", n, len(parts), parts[0].Parts, parts[0].Sync, parts[1].Sync)
	}
	a.rooms.PeerPresence(parts[0])
	a.rooms.PeerPresence(parts[2]) // parts[1] lost
	if got := len(a.rooms.onlineUsers()); got != 0 {
		t.Fatalf("%d online after a set with a part lost, want 0", got)
	}
	for i, p := range parts {
		a.rooms.PeerPresence(p)
		if got := len(a.rooms.onlineUsers()); (i < 2 && got != 0) || (i == 2 && got != n) {
			t.Fatalf("after part %d: %d online", i, got)
		}
	}
}
