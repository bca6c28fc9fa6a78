package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

type commandResponse struct {
	CommandID string `json:"command_id"`
	Status    string `json:"status"`
}

func TestSendReliable(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ctx := context.Background()
	resp := commandResponse{CommandID: "cmd-1", Status: "success"}

	c := env.connect("alice", model.RoleOperator)
	if err := env.hub.SendReliable(ctx, "alice", "command_response", json.RawMessage(`"c1"`), resp); err != nil {
		t.Fatal(err)
	}
	m := c.expectType("command_response")
	if string(m.ID) != "1" || string(m.Ref) != `"c1"` || string(m.Data) != `{"command_id":"cmd-1","status":"success"}` {
		t.Fatalf("got %s, want id 1, ref \"c1\" and the response", m.raw)
	}

	// Not acked: the next connection gets it again, same id.
	c.close(t)
	env.eventually("alice's connection is gone", func() bool { return env.hub.Stats().ActiveConnections == 0 })
	c = env.connect("alice", model.RoleOperator)
	again := c.expectType("command_response")
	if string(again.raw) != string(m.raw) {
		t.Fatalf("redelivered %s, want %s", again.raw, m.raw)
	}

	// Acked (with an id of its own, and then a string ref): gone.
	c.send(map[string]any{"type": "ack", "ref": 1})
	if extra := c.roundTrip(1); len(extra) != 0 {
		t.Fatalf("an ack was answered with %v", extra)
	}
	if n := env.store.count("alice"); n != 0 {
		t.Fatalf("%d deliveries still pending after the ack", n)
	}
	c.close(t)
	env.eventually("alice's connection is gone", func() bool { return env.hub.Stats().ActiveConnections == 0 })
	c = env.connect("alice", model.RoleOperator)
	if extra := c.roundTrip(2); len(extra) != 0 {
		t.Fatalf("after the ack the next connection got %v", extra)
	}

	// Acking it twice, or an id that never existed: not_found.
	c.send(map[string]any{"type": "ack", "id": "a1", "ref": 1})
	c.expectError(protocol.CodeNotFound, `"a1"`)
	c.send(map[string]any{"type": "ack", "ref": "77"})
	c.expectError(protocol.CodeNotFound, "")
}

func TestSendReliableReachesEveryConnection(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ctx := context.Background()
	b1 := env.connect("bob", model.RoleOperator)
	b2 := env.connect("bob", model.RoleOperator)
	carol := env.connect("carol", model.RoleOperator)
	if err := env.hub.SendReliable(ctx, "bob", "command_response", nil, commandResponse{CommandID: "x", Status: "timeout"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{b1, b2} {
		m := c.expectType("command_response")
		if string(m.ID) != "1" || len(m.Ref) != 0 {
			t.Errorf("got %s, want id 1 and no ref", m.raw)
		}
	}
	if extra := carol.roundTrip(1); len(extra) != 0 {
		t.Errorf("carol got bob's message: %v", extra)
	}
	// Carol cannot ack bob's message.
	carol.send(map[string]any{"type": "ack", "ref": 1})
	carol.expectError(protocol.CodeNotFound, "")
	// One ack from either connection settles it.
	b2.send(map[string]any{"type": "ack", "ref": 1})
	b2.roundTrip(2)
	if n := env.store.count("bob"); n != 0 {
		t.Errorf("%d deliveries pending after the ack", n)
	}
}

func TestSendReliableOffline(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ctx := context.Background()
	for i := range 3 {
		if err := env.hub.SendReliable(ctx, "dave", "command_response", json.RawMessage(fmt.Sprint(i)), commandResponse{Status: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	c := env.connect("dave", model.RoleViewer)
	for i := range 3 {
		m := c.expectType("command_response")
		if string(m.ID) != fmt.Sprint(i+1) || string(m.Ref) != fmt.Sprint(i) {
			t.Errorf("got %s, want id %d ref %d", m.raw, i+1, i)
		}
	}
}

// TestPendingBoundedByQueue: more unacknowledged messages than the send
// queue holds must not make the connection a slow consumer on connect.
func TestPendingBoundedByQueue(t *testing.T) {
	env := newEnv(t, Config{SendQueue: 16}, envOptions{})
	ctx := context.Background()
	for range 100 {
		if err := env.hub.SendReliable(ctx, "erin", "command_response", nil, commandResponse{Status: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; env.store.count("erin") > 0; round++ {
		if round > 100 {
			t.Fatalf("%d deliveries still pending after %d connections", env.store.count("erin"), round)
		}
		c := env.connect("erin", model.RoleViewer)
		got := c.roundTrip(1)
		if len(got) == 0 {
			t.Fatalf("connection %d got nothing with %d pending", round, env.store.count("erin"))
		}
		// One ack confirms them all.
		ids := make([]json.RawMessage, len(got))
		for i, m := range got {
			ids[i] = m.ID
		}
		c.send(map[string]any{"type": "ack", "ref": ids})
		c.roundTrip(2)
		c.close(t)
	}
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonSlowConsumer); got != 0 {
		t.Errorf("%v slow-consumer disconnects while catching up", got)
	}
}

type failingStore struct{ fakeStore }

func (*failingStore) InsertDeliveries(context.Context, []model.Delivery) ([]model.Delivery, error) {
	return nil, errors.New("disk full")
}

func TestSendReliableStoreError(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) { h.deliveries = &failingStore{} }})
	err := env.hub.SendReliable(context.Background(), "alice", "command_response", nil, commandResponse{})
	if err == nil {
		t.Fatal("no error when the store fails")
	}
	if got := env.counter("watchroom_ws_reliable_store_errors_total", "", ""); got != 1 {
		t.Errorf("reliable_store_errors_total = %v, want 1", got)
	}
	if err := env.hub.SendReliable(context.Background(), "alice", "x", nil, make(chan int)); err == nil {
		t.Error("no error for data that cannot be encoded")
	}
}

func TestDecodeAckRef(t *testing.T) {
	many := "[" + strings.Repeat("1,", maxAckIDs) + "1]"
	for _, tt := range []struct {
		ref  string
		want []int64
	}{
		{`42`, []int64{42}}, {`"42"`, []int64{42}}, {`[1,"2",3]`, []int64{1, 2, 3}},
		{`0`, nil}, {`-1`, nil}, {`[]`, nil}, {`[0]`, nil}, {`["x"]`, nil}, {`{}`, nil}, {``, nil}, {many, nil},
	} {
		got, e := decodeAckRef(json.RawMessage(tt.ref))
		if (e == nil) != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("decodeAckRef(%.20s) = %v, %v; want %v", tt.ref, got, e, tt.want)
		}
	}
}

// TestBatchAck: one ack confirms several messages; ids that are not
// waiting for this user are named in one not_found, the others acked.
func TestBatchAck(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ctx := context.Background()
	for range 3 {
		if err := env.hub.SendReliable(ctx, "erin", "command_response", nil, commandResponse{Status: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	c := env.connect("erin", model.RoleViewer)
	got := c.roundTrip(1)
	if len(got) != 3 {
		t.Fatalf("got %d pending, want 3", len(got))
	}
	c.send(map[string]any{"type": "ack", "id": "b", "ref": []json.RawMessage{got[0].ID, got[2].ID, json.RawMessage("999")}})
	m := c.expectError(protocol.CodeNotFound, `"b"`)
	if !strings.Contains(string(m.Data), "[999]") {
		t.Errorf("not_found names %s, want only 999", m.Data)
	}
	if n := env.store.count("erin"); n != 1 {
		t.Errorf("%d deliveries pending after the batch ack, want 1", n)
	}
}
