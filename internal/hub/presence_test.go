package hub

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

type presenceLog struct {
	mu     sync.Mutex
	events []string
}

func (p *presenceLog) Online(user string)  { p.add("+" + user) }
func (p *presenceLog) Offline(user string) { p.add("-" + user) }
func (p *presenceLog) add(e string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
}
func (p *presenceLog) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func TestPresenceFollowsFirstAndLastConnection(t *testing.T) {
	log := &presenceLog{}
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.SetPresence(log) }})
	a1 := env.connect("ann", model.RoleViewer)
	a2 := env.connect("ann", model.RoleViewer)
	if !env.hub.Online("ann") || env.hub.Online("bob") {
		t.Errorf("Online(ann) = %v, Online(bob) = %v", env.hub.Online("ann"), env.hub.Online("bob"))
	}
	a1.close(t)
	a2.close(t)
	env.eventually("ann offline", func() bool { return !env.hub.Online("ann") })
	if got, want := log.get(), []string{"+ann", "-ann"}; !slices.Equal(got, want) {
		t.Errorf("presence events = %v, want %v (one per first and last connection)", got, want)
	}
}

func TestSendToUsersAndReliableToUsers(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ann := env.connect("ann", model.RoleViewer)
	bob := env.connect("bob", model.RoleViewer)
	carl := env.connect("carl", model.RoleViewer)
	if err := env.hub.SendToUsers([]string{"ann", "bob"}, "user_typing", map[string]string{"room": "general", "user": "carl"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{ann, bob} {
		if m := c.expectType("user_typing"); len(m.ID) != 0 {
			t.Errorf("unacked message carries id %s", m.ID)
		}
	}
	if extra := carl.roundTrip(1); len(extra) != 0 {
		t.Errorf("carl got %v", extra)
	}
	if err := env.hub.SendReliableToUsers(context.Background(), []string{"ann", "carl"}, "alert", map[string]int{"id": 9}); err != nil {
		t.Fatal(err)
	}
	ma, mc := ann.expectType("alert"), carl.expectType("alert")
	if len(ma.ID) == 0 || len(mc.ID) == 0 || string(ma.ID) == string(mc.ID) {
		t.Errorf("alert ids %s and %s: want one id per user", ma.ID, mc.ID)
	}
	if extra := bob.roundTrip(2); len(extra) != 0 {
		t.Errorf("bob got %v", extra)
	}
	if env.store.count("ann") != 1 || env.store.count("carl") != 1 {
		t.Errorf("stored deliveries: ann %d carl %d, want 1 each", env.store.count("ann"), env.store.count("carl"))
	}
}
