package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

// untilChat collects c's messages until the chat_message with content
// marker arrives, and counts them by type and content.
func untilChat(t *testing.T, c *wsClient, marker string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatalf("connection closed before chat %q", marker)
			}
			var d struct {
				Content string `json:"content"`
				User    string `json:"user"`
				Reason  string `json:"reason"`
			}
			_ = json.Unmarshal(m.Data, &d)
			counts[m.Type+":"+d.Content+d.User+d.Reason]++
			if m.Type == "chat_message" && d.Content == marker {
				return counts
			}
		case <-deadline:
			t.Fatalf("no chat %q within 10s; got %v", marker, counts)
		}
	}
}

// Two instances on one broker and one database: chat, room changes,
// direct messages and presence reach the users wherever they are
// connected, each once per connection; a user who moves from one
// instance to the other within the grace is not announced offline; the
// users of an instance that stops go offline on the other.
func TestTwoInstancesChatAndPresence(t *testing.T) {
	db := newDB(t)
	broker := mqtttest.Start(t)
	addUser(t, db, "alice", "operator", "alice-password")
	addUser(t, db, "bob", "analyst", "bob-password")
	shared := func(id string) []string {
		return baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID="+id, "WATCHROOM_MQTT_CLIENT_ID=",
			"WATCHROOM_MQTT_SHARE_GROUP=wr", "WATCHROOM_PRESENCE_GRACE=4s")
	}
	a, b := startServer(t, shared("web-1")), startServer(t, shared("web-2"))
	aliceTok, bobTok := login(t, a.addr, "alice", "alice-password"), login(t, b.addr, "bob", "bob-password")
	alice := connect(t, a.addr, aliceTok)
	bob := connect(t, b.addr, bobTok)

	// Presence crosses: web-1 learns bob is online on web-2 and tells alice.
	if m := alice.nextOf("user_joined", 10*time.Second); string(m.Data) != `{"room":"alerts","user":"bob","reason":"online"}` && string(m.Data) != `{"room":"general","user":"bob","reason":"online"}` {
		t.Fatalf("alice got user_joined %s", m.Data)
	}
	// A room made on web-2 is announced on web-1; alice joins it there,
	// and bob hears it on web-2.
	bob.send(map[string]any{"type": "create_room", "id": "c1", "data": map[string]string{"room": "ops"}})
	if m := alice.nextOf("room_created", 10*time.Second); !json.Valid(m.Data) {
		t.Fatal(m.Raw)
	}
	// bob's first message loads ops's members (bob alone) into web-2's memory.
	bob.send(map[string]any{"type": "chat_message", "id": "m0", "data": map[string]string{"room": "ops", "content": "anyone?"}})
	if m := bob.nextOf("chat_message_sent", 10*time.Second); !json.Valid(m.Data) {
		t.Fatal(m.Raw)
	}
	alice.send(map[string]any{"type": "join_room", "id": "j1", "data": map[string]string{"room": "ops"}})
	if m := alice.nextOf("joined", 10*time.Second); !json.Valid(m.Data) {
		t.Fatal(m.Raw)
	}
	for m := bob.nextOf("user_joined", 10*time.Second); string(m.Data) != `{"room":"ops","user":"alice"}`; m = bob.nextOf("user_joined", 10*time.Second) {
		if !strings.Contains(string(m.Data), `"reason":"online"`) {
			t.Fatalf("bob got user_joined %s", m.Data)
		}
	}
	// web-2 has ops's members in memory: alice's join on web-1 must drop
	// that copy, or bob's message would not go to alice.
	bob.send(map[string]any{"type": "chat_message", "id": "m1", "data": map[string]string{"room": "ops", "content": "hello from web-2"}})
	alice.send(map[string]any{"type": "direct_message", "id": "d1", "data": map[string]string{"to": "bob", "content": "psst"}})
	bob.send(map[string]any{"type": "chat_message", "id": "m2", "data": map[string]string{"room": "ops", "content": "end-b"}})
	alice.send(map[string]any{"type": "chat_message", "id": "m3", "data": map[string]string{"room": "ops", "content": "end-a"}})

	got := untilChat(t, alice, "end-b")
	if got["chat_message:hello from web-2bob"] != 1 {
		t.Errorf("alice on web-1 got bob's message %d times, want once: %v", got["chat_message:hello from web-2bob"], got)
	}
	got = untilChat(t, bob, "end-a")
	if got["chat_message:hello from web-2bob"] != 1 || got["direct_message:psst"] != 1 {
		t.Errorf("bob on web-2: %v; want his message and alice's direct message once each", got)
	}

	// bob moves from web-2 to web-1 within the grace: nobody hears he left.
	bob.conn.Close()
	bob = connect(t, a.addr, bobTok)
	time.Sleep(5 * time.Second) // past the 4s grace
	alice.send(map[string]any{"type": "chat_message", "id": "m4", "data": map[string]string{"room": "ops", "content": "still here?"}})
	got = untilChat(t, alice, "still here?")
	for k := range got {
		if strings.HasPrefix(k, "user_left:") {
			t.Errorf("alice heard bob leave while he moved: %v", got)
		}
	}

	// web-1 stops: bob, now connected there, goes offline for web-2's
	// clients; alice connects to web-2 to hear it.
	alice2 := connect(t, b.addr, aliceTok)
	bob.conn.Close()
	alice.conn.Close()
	a.stop()
	if m := alice2.nextOf("user_left", 15*time.Second); !strings.Contains(string(m.Data), `"user":"bob","reason":"offline"`) {
		t.Fatalf("alice on web-2 got user_left %s", m.Data)
	}
}

// Commands with two instances: a device's answers reach either instance
// (the responses' shared subscription), and each command yields exactly
// one command_response for the issuing user on the instance they are
// connected to. A command whose issuing instance stops before it times
// out is timed out once by the other instance's sweep, and its user hears
// it there.
func TestTwoInstancesCommands(t *testing.T) {
	db := newDB(t)
	broker := mqtttest.Start(t)
	addUser(t, db, "olga", "operator", "olga-password")
	shared := func(id string) []string {
		return baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID="+id, "WATCHROOM_MQTT_CLIENT_ID=",
			"WATCHROOM_MQTT_SHARE_GROUP=wr", "WATCHROOM_COMMAND_TIMEOUT=3s")
	}
	a, b := startServer(t, shared("web-1")), startServer(t, shared("web-2"))
	token := login(t, a.addr, "olga", "olga-password")
	olga := connect(t, a.addr, token)

	// The device answers every command on sensor d1 at once; d2 is silent.
	dev := publisher(t, broker.URL())
	if tok := dev.Subscribe("devices/d1/commands", 1, func(c mqtt.Client, m mqtt.Message) {
		var cmd struct{ ID string }
		if json.Unmarshal(m.Payload(), &cmd) == nil {
			c.Publish("devices/d1/responses", 1, false, fmt.Sprintf(`{"id":%q,"status":"success","message":"ok"}`, cmd.ID))
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device subscribe: %v", tok.Error())
	}
	const n = 6
	for i := range n {
		olga.send(map[string]any{"type": "command", "id": fmt.Sprint(i), "data": map[string]any{"sensor_id": "d1", "action": "calibrate_sensor"}})
	}
	got := map[string]int{}
	for range n {
		var r struct {
			CommandID string `json:"command_id"`
			Status    string `json:"status"`
		}
		m := olga.nextOf("command_response", 10*time.Second)
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != "success" {
			t.Fatalf("command_response %s", m.Data)
		}
		got[r.CommandID]++
		olga.send(map[string]any{"type": "ack", "ref": m.ID})
	}
	if len(got) != n {
		t.Errorf("responses for %d distinct commands, want %d: %v", len(got), n, got)
	}
	finished := map[string]float64{}
	for _, s := range []*testServer{a, b} {
		m := (&child{t: t, env: s.env}).metrics()
		finished[lookupEnv(s.env, "WATCHROOM_INSTANCE_ID")] = m[`watchroom_commands_total{outcome="success"}`]
	}
	t.Logf("commands finished as success by instance: %v", finished)
	if finished["web-1"]+finished["web-2"] != n {
		t.Errorf("commands finished: %v, want %d in all", finished, n)
	}

	// A command to the silent d2 from web-1, which then stops before the
	// command's 3s are up: web-2's sweep times it out (8s after it was
	// issued: its timeout and the sweep's slack), and olga, now on web-2,
	// hears it once.
	olga.send(map[string]any{"type": "command", "id": "last", "data": map[string]any{"sensor_id": "d2", "action": "calibrate_sensor"}})
	olga.nextOf("command_sent", 10*time.Second)
	olga.conn.Close()
	a.stop()
	olga = connect(t, b.addr, token)
	timeouts := 0
	// Until a ping sent after the timeout came back: one timeout, and
	// maybe success responses whose ack had not reached web-1 (sent again,
	// as they should be).
	for deadline := time.After(30 * time.Second); ; {
		var m wsMsg
		select {
		case m = <-olga.msgs:
		case <-deadline:
			t.Fatalf("%d timeouts of d2's command within 30s", timeouts)
		}
		if m.Type == "pong" {
			break
		}
		if m.Type != "command_response" {
			continue
		}
		olga.send(map[string]any{"type": "ack", "ref": m.ID})
		if strings.Contains(string(m.Data), `"status":"timeout"`) {
			if !strings.Contains(string(m.Data), `"sensor_id":"d2"`) {
				t.Fatalf("command_response %s; want the timeout of d2's command", m.Data)
			}
			timeouts++
			olga.send(map[string]any{"type": "ping", "id": "p"})
		}
	}
	if timeouts != 1 {
		t.Errorf("%d timeouts of d2's command, want 1", timeouts)
	}
	if m := (&child{t: t, env: b.env}).metrics(); m[`watchroom_commands_total{outcome="timeout"}`] != 1 {
		t.Errorf("web-2 timed out %v commands, want 1 (by its sweep)", m[`watchroom_commands_total{outcome="timeout"}`])
	}
}
