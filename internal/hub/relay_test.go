package hub

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// wire stands for the backplane: a frame goes through JSON, as on the
// broker, to the other hub.
type wire struct {
	t  *testing.T
	to **Hub
}

func (w wire) Relay(f Frame) {
	b, err := json.Marshal(f)
	if err != nil {
		w.t.Errorf("encode frame: %v", err)
		return
	}
	var got Frame
	if err := json.Unmarshal(b, &got); err != nil {
		w.t.Errorf("decode frame: %v", err)
		return
	}
	(*w.to).Deliver(got)
}

// Two hubs relaying to each other: every message sent to users reaches
// their connections on both, once per connection, encoded once at the
// origin (reliable ones with each user's delivery id); what is sent to
// local users only stays.
func TestRelayAcrossTwoHubs(t *testing.T) {
	var a, b *Hub
	ea := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.SetRelay(wire{t, &b}) }})
	eb := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.SetRelay(wire{t, &a}) }})
	a, b = ea.hub, eb.hub
	ana1, ana2, cid := ea.connect("ana", model.RoleViewer), ea.connect("ana", model.RoleViewer), ea.connect("cid", model.RoleViewer)
	bob := eb.connect("bob", model.RoleViewer)
	all := map[string]*client{"ana1": ana1, "ana2": ana2, "cid": cid, "bob": bob}
	// what returns, per connection, what arrived before a ping's pong.
	what := func(id int) map[string][]string {
		out := map[string][]string{}
		for name, c := range all {
			for _, m := range c.roundTrip(id) {
				out[name] = append(out[name], m.Type+" "+string(m.Data))
			}
		}
		return out
	}
	expect := func(step string, got map[string][]string, want map[string][]string) {
		t.Helper()
		for name := range all {
			if !slices.Equal(got[name], want[name]) {
				t.Errorf("%s: %s got %q, want %q", step, name, got[name], want[name])
			}
		}
	}

	if err := a.Broadcast("note", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	one := []string{`note {"n":1}`}
	expect("broadcast", what(1), map[string][]string{"ana1": one, "ana2": one, "cid": one, "bob": one})

	if err := b.SendToUsers([]string{"ana", "bob"}, "chat", map[string]string{"c": "hi"}); err != nil {
		t.Fatal(err)
	}
	hi := []string{`chat {"c":"hi"}`}
	expect("to users", what(2), map[string][]string{"ana1": hi, "ana2": hi, "bob": hi})

	if err := b.SendToLocalUsers([]string{"ana", "bob"}, "presence", map[string]string{"u": "x"}); err != nil {
		t.Fatal(err)
	}
	expect("to local users", what(3), map[string][]string{"bob": {`presence {"u":"x"}`}})

	if err := a.SendReliableToUsers(context.Background(), []string{"bob", "ana"}, "dm", map[string]string{"c": "psst"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for name, c := range map[string]*client{"ana1": ana1, "ana2": ana2, "bob": bob} {
		ms := c.roundTrip(4)
		if len(ms) != 1 || ms[0].Type != "dm" || string(ms[0].Data) != `{"c":"psst"}` {
			t.Fatalf("%s got %v, want one dm", name, ms)
		}
		ids[name] = string(ms[0].ID)
	}
	if ids["ana1"] != ids["ana2"] || ids["ana1"] == ids["bob"] || ea.store.count("bob") != 1 || ea.store.count("ana") != 1 || eb.store.count("bob") != 0 {
		t.Errorf("delivery ids %v, stored at the origin %d+%d, elsewhere %d; want one id per user, stored once at the origin",
			ids, ea.store.count("ana"), ea.store.count("bob"), eb.store.count("bob"))
	}
	if ms := cid.roundTrip(5); len(ms) != 0 {
		t.Errorf("cid got %v", ms)
	}

	// A frame without a message for each user is dropped, counted.
	b.Deliver(Frame{Type: "dm", Users: []string{"bob"}, Msgs: nil, Msg: nil})
	b.Deliver(Frame{Type: "dm", Users: []string{"bob", "ana"}, Msgs: []json.RawMessage{json.RawMessage(`{}`)}})
	if got := testutil.ToFloat64(b.m.relayDropped); got != 2 {
		t.Errorf("relayed frames dropped = %v, want 2", got)
	}
	if ms := bob.roundTrip(6); len(ms) != 0 {
		t.Errorf("bob got %v from malformed frames", ms)
	}
}
