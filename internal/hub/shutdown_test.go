package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func TestShutdown(t *testing.T) {
	env := newEnv(t, Config{AuthTimeout: 2 * time.Second}, envOptions{})
	reader := env.connect("alice", model.RoleViewer)
	// This one reads nothing after auth_ok and never answers the close.
	deaf := env.dial(dialOptions{})
	deaf.auth(env.token("bob", model.RoleViewer))
	_ = deaf.ws.SetReadDeadline(time.Now().Add(waitFor))
	if _, b, err := deaf.ws.ReadMessage(); err != nil || decodeFrame(1, b)[0].Type != "auth_ok" {
		t.Fatalf("auth: %q, %v", b, err)
	}
	_ = deaf.ws.SetReadDeadline(time.Time{})
	// This one has upgraded but not yet authenticated.
	late := env.dial(dialOptions{})

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := env.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	reader.expectClosedWith(protocol.CloseGoingAway)
	deaf.expectClosedWith(protocol.CloseGoingAway)
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonShutdown); got != 2 {
		t.Errorf("disconnects{reason=shutdown} = %v, want 2", got)
	}
	if n := env.hub.Stats().ActiveConnections; n != 0 {
		t.Errorf("%d active connections after Shutdown", n)
	}

	// Authenticating after Shutdown is refused with 1001 and no auth_ok.
	late.auth(env.token("carol", model.RoleViewer))
	if msgs := late.expectClosedWith(protocol.CloseGoingAway); len(msgs) != 0 {
		t.Errorf("a refused connection got %v", msgs)
	}
	fresh := env.dial(dialOptions{})
	fresh.auth(env.token("dave", model.RoleViewer))
	if msgs := fresh.expectClosedWith(protocol.CloseGoingAway); len(msgs) != 0 {
		t.Errorf("a refused connection got %v", msgs)
	}
	env.eventually("every Serve call returned", func() bool { return env.serving.Load() == 0 })
	// Publishing to a shut-down hub is harmless.
	env.hub.PublishReadings([]model.Reading{reading("s-1", 1)})
}

// TestShutdownDeadline: when ctx ends first, Shutdown reports it and cuts
// the remaining sockets, so every Serve call still returns.
func TestShutdownDeadline(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	for _, u := range []string{"alice", "bob"} {
		c := env.dial(dialOptions{})
		c.auth(env.token(u, model.RoleViewer))
		_ = c.ws.SetReadDeadline(time.Now().Add(waitFor))
		if _, b, err := c.ws.ReadMessage(); err != nil || decodeFrame(1, b)[0].Type != "auth_ok" {
			t.Fatalf("auth: %q, %v", b, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := env.hub.Shutdown(ctx); err == nil {
		t.Error("Shutdown with an ended context returned nil while connections were open")
	}
	env.eventually("every Serve call returned", func() bool { return env.serving.Load() == 0 })
}

// stepClock stands still until advanced, so durations measured by the
// hub are exact whatever the machine's speed or clock resolution.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestStats(t *testing.T) {
	clock := &stepClock{t: time.Now()} // tokens expire by the real clock
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.now = clock.now
		h.stats.start = clock.now()
	}})
	if st := env.hub.Stats(); st.ActiveConnections != 0 || st.TotalMessages != 0 {
		t.Fatalf("fresh hub stats %+v", st)
	}
	a := env.connect("alice", model.RoleViewer)
	b := env.connect("bob", model.RoleViewer)
	st := env.hub.Stats()
	if st.ActiveConnections != 2 {
		t.Errorf("active connections %d, want 2", st.ActiveConnections)
	}
	// A message is counted once written, which may be just after the
	// client has read it.
	env.eventually("both auth_ok are counted", func() bool { return env.hub.Stats().TotalMessages == 2 })
	a.roundTrip(1)
	b.roundTrip(1)
	env.hub.PublishReadings([]model.Reading{reading("s-1", 1), reading("s-1", 2)})
	a.next()
	a.next()
	b.next()
	b.next()
	env.eventually("2 pongs and 4 readings are counted", func() bool { return env.hub.Stats().TotalMessages == 8 })
	clock.advance(90 * time.Second)
	a.close(t)
	env.eventually("alice's connection is counted as closed", func() bool {
		st := env.hub.Stats()
		return st.ActiveConnections == 1 && st.ClosedConnectionCount == 1
	})
	st = env.hub.Stats()
	if st.AvgConnectionSeconds != 90 || st.UptimeSeconds != 90 {
		t.Errorf("stats %+v: want an average duration and uptime of 90s", st)
	}
	if st.MessagesPerMinute != st.TotalMessages {
		t.Errorf("in the first minute, messages per minute %d != total %d", st.MessagesPerMinute, st.TotalMessages)
	}
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonClientClosed); got != 1 {
		t.Errorf("disconnects{reason=client_closed} = %v, want 1", got)
	}
}

func TestStatsPerMinute(t *testing.T) {
	var s stats
	if got := s.perMinute(); got != 0 {
		t.Fatalf("empty: %d", got)
	}
	s.messages.Add(10)
	if got := s.perMinute(); got != 10 {
		t.Errorf("before the first sample: %d, want 10", got)
	}
	s.sample(time.Time{}) // second 1: 10
	s.messages.Add(5)
	if got := s.perMinute(); got != 15 {
		t.Errorf("within the first minute: %d, want 15", got)
	}
	// 100 messages in each of the next 70 seconds: the window holds 60 of them.
	for range 70 {
		s.messages.Add(100)
		s.sample(time.Time{})
	}
	if got := s.perMinute(); got != 6000 {
		t.Errorf("steady 100/s: %d per minute, want 6000", got)
	}
	for range 61 {
		s.sample(time.Time{})
	}
	if got := s.perMinute(); got != 0 {
		t.Errorf("after a quiet minute: %d, want 0", got)
	}
}

func TestRun(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.hub.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
	}
}

// TestShutdownSendsWhatIsQueued: readings queued for a client that is
// behind when the server shuts down still reach it before its 1001: they
// were committed (ingest's final flush runs before the hub closes).
func TestShutdownSendsWhatIsQueued(t *testing.T) {
	env := newEnv(t, Config{SendQueue: 64}, envOptions{sndBuf: 4096})
	slow := stalledClient(t, env)
	const items, per = 20, 50 // fewer items than the high-water mark: nothing is thinned
	for i := range items {
		env.hub.PublishReadings(seq(i*per+1, (i+1)*per))
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		done <- env.hub.Shutdown(ctx)
	}()
	env.eventually("the connection is closing", func() bool {
		return env.counter("watchroom_ws_disconnects_total", "reason", reasonShutdown) == 1
	})
	msgs := slow.expectClosedWith(protocol.CloseGoingAway)
	if len(msgs) != items*per {
		t.Fatalf("got %d messages before 1001, want all %d readings", len(msgs), items*per)
	}
	for i, m := range msgs {
		if v := readingOf(t, m).Value; v != float64(i+1) {
			t.Fatalf("message %d: value %v", i, v)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
