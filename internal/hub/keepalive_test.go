package hub

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

const testPing = 200 * time.Millisecond

func TestServerPings(t *testing.T) {
	env := newEnv(t, Config{PingInterval: testPing}, envOptions{})
	var pings atomic.Int64
	c := env.dial(dialOptions{onPing: func() { pings.Add(1) }})
	c.auth(env.token("alice", model.RoleViewer))
	c.expectType("auth_ok")
	env.eventually("the server sent 3 pings", func() bool { return pings.Load() >= 3 })
	// A client that answers pings stays connected well past two intervals.
	time.Sleep(3 * testPing)
	c.roundTrip(1)
	if got := env.hub.Stats().ActiveConnections; got != 1 {
		t.Errorf("active connections %d, want 1", got)
	}
}

func TestMissedPongsClose(t *testing.T) {
	env := newEnv(t, Config{PingInterval: testPing}, envOptions{})
	c := env.dial(dialOptions{noPong: true})
	c.auth(env.token("alice", model.RoleViewer))
	c.expectType("auth_ok")
	start := time.Now()
	it, ok := c.nextItem()
	if !ok || it.err == nil {
		t.Fatalf("got %+v, want the connection to end", it)
	}
	if d := time.Since(start); d < testPing {
		t.Errorf("closed after %v, before even one ping interval", d)
	}
	env.eventually("the disconnect is counted", func() bool {
		return env.counter("watchroom_ws_disconnects_total", "reason", reasonPongTimeout) == 1
	})
}

func TestAppPing(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	tests := []struct {
		name, req, want string
	}{
		{"number id", `{"type":"ping","id":7}`, `{"type":"pong","ref":7}`},
		{"string id", `{"type":"ping","id":"abc-1"}`, `{"type":"pong","ref":"abc-1"}`},
		{"float id", `{"type":"ping","id":7.25}`, `{"type":"pong","ref":7.25}`},
		{"exponent id kept as sent", `{"type":"ping","id":1e3}`, `{"type":"pong","ref":1e3}`},
		{"negative id", `{"type":"ping","id":-3}`, `{"type":"pong","ref":-3}`},
		{"escaped string id", `{"type":"ping","id":"a\"b"}`, `{"type":"pong","ref":"a\"b"}`},
		{"no id", `{"type":"ping"}`, `{"type":"pong"}`},
		{"data ignored", `{"type":"ping","id":8,"data":{"x":1}}`, `{"type":"pong","ref":8}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.sendText(tt.req)
			if m := c.next(); string(m.raw) != tt.want {
				t.Errorf("got %s, want %s", m.raw, tt.want)
			}
		})
	}
}

func TestBareTextPing(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	for _, req := range []string{"ping", " ping\n"} {
		c.sendText(req)
		m := c.next()
		if !m.text || string(m.raw) != "pong" || m.batch {
			t.Errorf("after %q got %q (text %v, batch %v), want a text frame pong", req, m.raw, m.text, m.batch)
		}
	}
	// The text pong keeps its place among queued JSON messages, in a frame
	// of its own.
	env.hub.PublishReadings([]model.Reading{reading("s-1", 1), reading("s-1", 2)})
	c.sendText("ping")
	var order []string
	for len(order) < 3 {
		m := c.next()
		if m.text {
			if m.batch {
				t.Errorf("the text pong came inside a batch")
			}
			order = append(order, string(m.raw))
			continue
		}
		order = append(order, m.Type)
	}
	if want := []string{"reading", "reading", "pong"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}
