package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func TestReadingsReachEveryClient(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	a := env.connect("alice", model.RoleViewer)
	b := env.connect("bob", model.RoleAdmin)
	r := model.Reading{SensorID: "s-17", Metric: "temperature", Value: 23.5, Unit: "°C",
		TS: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.FixedZone("CET", 3600))}
	env.hub.PublishReadings([]model.Reading{r})
	want := `{"type":"reading","data":{"sensor_id":"s-17","metric":"temperature","value":23.5,"unit":"°C","ts":"2026-11-21T09:00:00.123000Z"}}`
	for _, c := range []*client{a, b} {
		if m := c.next(); string(m.raw) != want {
			t.Errorf("got %s\nwant %s", m.raw, want)
		}
	}
	if got := env.counter("watchroom_ws_messages_out_total", "type", "reading"); got != 2 {
		t.Errorf("messages_out{type=reading} = %v, want 2", got)
	}
}

func TestSubscribe(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	other := env.connect("bob", model.RoleViewer)

	// publish sends one reading of each sensor and returns the sensors
	// whose readings reached c before the pong of a ping sent afterwards.
	round := 0
	publish := func(sensors ...string) []string {
		t.Helper()
		rs := make([]model.Reading, len(sensors))
		for i, s := range sensors {
			rs[i] = reading(s, float64(i))
		}
		env.hub.PublishReadings(rs)
		round++
		var got []string
		for _, m := range c.roundTrip(round) {
			got = append(got, readingOf(t, m).SensorID)
		}
		return got
	}
	all := []string{"s-1", "s-2", "s-3"}

	steps := []struct {
		name string
		req  string
		want string // the subscribed data
		got  []string
	}{
		{"default is every sensor", "", "", all},
		{"subscribe narrows", `{"type":"subscribe","id":1,"data":{"sensors":["s-1"]}}`, `{"sensors":["s-1"]}`, []string{"s-1"}},
		{"subscribe adds", `{"type":"subscribe","id":2,"data":{"sensors":["s-3"]}}`, `{"sensors":["s-1","s-3"]}`, []string{"s-1", "s-3"}},
		{"unsubscribe removes", `{"type":"unsubscribe","id":3,"data":{"sensors":["s-1"]}}`, `{"sensors":["s-3"]}`, []string{"s-3"}},
		{"unsubscribe the last", `{"type":"unsubscribe","id":4,"data":{"sensors":["s-3"]}}`, `{"sensors":[]}`, nil},
		{"star restores all", `{"type":"subscribe","id":5,"data":{"sensors":["*"]}}`, `{"sensors":["*"]}`, all},
		{"unsubscribe from all excludes", `{"type":"unsubscribe","id":6,"data":{"sensors":["s-2"]}}`, `{"except":["s-2"],"sensors":["*"]}`, []string{"s-1", "s-3"}},
		{"subscribe lifts the exclusion", `{"type":"subscribe","id":7,"data":{"sensors":["s-2"]}}`, `{"sensors":["*"]}`, all},
		{"unsubscribe star stops all", `{"type":"unsubscribe","id":8,"data":{"sensors":["*"]}}`, `{"sensors":[]}`, nil},
		{"subscribe from nothing", `{"type":"subscribe","id":9,"data":{"sensors":["s-2","s-2"]}}`, `{"sensors":["s-2"]}`, []string{"s-2"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c.t = t
			if st.req != "" {
				c.sendText(st.req)
				m := c.expectType("subscribed")
				var req struct{ ID json.RawMessage }
				_ = json.Unmarshal([]byte(st.req), &req)
				if string(m.Ref) != string(req.ID) || string(m.Data) != st.want {
					t.Errorf("got %s, want ref %s data %s", m.raw, req.ID, st.want)
				}
			}
			if got := publish(all...); !slices.Equal(got, st.got) {
				t.Errorf("readings of %v arrived, want %v", got, st.got)
			}
		})
	}
	// The other connection's filter is its own.
	if n := len(other.roundTrip(1)); n != 3*len(steps) {
		t.Errorf("the other client got %d readings, want %d", n, 3*len(steps))
	}
}

func TestSubscribeInvalid(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	tests := []struct{ name, req string }{
		{"invalid sensor id", `{"type":"subscribe","id":1,"data":{"sensors":["s/1"]}}`},
		{"wildcard in id", `{"type":"subscribe","id":1,"data":{"sensors":["sensors/#"]}}`},
		{"empty list", `{"type":"subscribe","id":1,"data":{"sensors":[]}}`},
		{"empty id", `{"type":"subscribe","id":1,"data":{"sensors":[""]}}`},
		{"star with ids", `{"type":"subscribe","id":1,"data":{"sensors":["*","s-1"]}}`},
		{"not a list", `{"type":"subscribe","id":1,"data":{"sensors":"s-1"}}`},
		{"no sensors", `{"type":"unsubscribe","id":1,"data":{}}`},
		{"data not an object", `{"type":"unsubscribe","id":1,"data":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.sendText(tt.req)
			c.expectError(protocol.CodeBadRequest, "1")
		})
	}
	// A refused subscribe leaves the filter as it was: every sensor.
	env.hub.PublishReadings([]model.Reading{reading("s-9", 1)})
	if m := c.next(); readingOf(t, m).SensorID != "s-9" {
		t.Errorf("got %s", m.raw)
	}
}

// TestReadingsInOrder publishes 1000 readings at once: they arrive in
// order, and at least some of them share a batch frame.
func TestReadingsInOrder(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	const n = 1000
	rs := make([]model.Reading, n)
	for i := range rs {
		rs[i] = reading("s-1", float64(i))
	}
	env.hub.PublishReadings(rs)
	batched := 0
	for i := range n {
		m := c.next()
		if v := readingOf(t, m).Value; v != float64(i) {
			t.Fatalf("reading %d has value %v: out of order", i, v)
		}
		if m.batch {
			batched++
		}
	}
	if batched == 0 {
		t.Errorf("no batch frame among %d readings published at once", n)
	}
	if extra := c.roundTrip(1); len(extra) != 0 {
		t.Errorf("%d extra messages", len(extra))
	}
}

// TestBatchShape checks batch frames: never more than MaxBatch messages,
// never a batch of one, messages in order across frames.
func TestBatchShape(t *testing.T) {
	const maxBatch = 8
	env := newEnv(t, Config{MaxBatch: maxBatch}, envOptions{})
	c := env.connect("alice", model.RoleViewer)
	const n = 400
	rs := make([]model.Reading, n)
	for i := range rs {
		rs[i] = reading(fmt.Sprintf("s-%d", i%7), float64(i))
	}
	env.hub.PublishReadings(rs)
	perFrame := map[int]int{}
	batches := 0
	for i := range n {
		m := c.next()
		if v := readingOf(t, m).Value; v != float64(i) {
			t.Fatalf("message %d has value %v: out of order", i, v)
		}
		if m.batch {
			perFrame[m.frame]++
		}
	}
	for frame, k := range perFrame {
		batches++
		if k < 2 || k > maxBatch {
			t.Errorf("batch frame %d holds %d messages, want 2 to %d", frame, k, maxBatch)
		}
	}
	if batches == 0 {
		t.Errorf("no batch frame among %d readings published at once", n)
	}
}

// TestSlowConsumer: one client stops reading, another keeps up. Messages
// that are never thinned (anything but readings) overflow the slow one's
// queue and it is closed with 4008; the fast one receives every message.
func TestSlowConsumer(t *testing.T) {
	// Small kernel buffers make the stalled writer block after a few KB
	// instead of megabytes; the close frame still gets through once the
	// client reads again, within WriteTimeout.
	env := newEnv(t, Config{SendQueue: 16, WriteTimeout: 10 * time.Second}, envOptions{sndBuf: 4096})
	fast := env.connect("fast", model.RoleViewer)
	slow := stalledClient(t, env)

	slowClosed := func() float64 {
		return env.counter("watchroom_ws_disconnects_total", "reason", reasonSlowConsumer)
	}
	// Publish in steps the fast client keeps up with (at most chunk
	// messages in flight, fewer than its queue holds), until the slow one
	// has been cut off, then a few hundred more.
	const chunk, maxReadings, after = 8, 20000, 400
	published, stopAt := 0, maxReadings
	for published < stopAt {
		for i := range chunk {
			if err := env.hub.Broadcast("note", published+i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range chunk {
			if v := noteOf(t, fast.next()); v != published+i {
				t.Fatalf("fast client: note %d has value %v", published+i, v)
			}
		}
		published += chunk
		if stopAt == maxReadings && slowClosed() > 0 {
			stopAt = published + after
		}
	}
	if slowClosed() != 1 {
		t.Fatalf("disconnects{reason=slow_consumer} = %v after %d notes, want 1", slowClosed(), published)
	}
	fast.roundTrip(1)

	msgs := slow.expectClosedWith(protocol.CloseSlowConsumer)
	if len(msgs) >= published {
		t.Errorf("slow client read %d of %d notes before the close, want fewer", len(msgs), published)
	}
	for i, m := range msgs {
		if v := noteOf(t, m); v != i {
			t.Fatalf("slow client: note %d has value %v", i, v)
		}
	}
	t.Logf("slow client got %d of %d notes before 4008", len(msgs), published)
	if got := env.hub.Stats().FailedDeliveries; got == 0 {
		t.Errorf("FailedDeliveries = 0 after a slow consumer")
	}
	env.eventually("the slow connection is gone", func() bool { return env.hub.Stats().ActiveConnections == 1 })
	if slowClosed() != 1 {
		t.Errorf("disconnects{reason=slow_consumer} = %v, want 1", slowClosed())
	}
}

func noteOf(t *testing.T, m msg) int {
	t.Helper()
	var v int
	if m.Type != "note" || json.Unmarshal(m.Data, &v) != nil {
		t.Fatalf("got %s, want a note", m.raw)
	}
	return v
}

// TestThinning: a client that falls behind gets the latest value per
// series and a gap naming what it missed, not a close; one that stops
// reading altogether is closed by the write deadline. The fast client
// gets every reading either way.
func TestThinning(t *testing.T) {
	env := newEnv(t, Config{SendQueue: 16, WriteTimeout: 10 * time.Second}, envOptions{sndBuf: 4096})
	fast := env.connect("fast", model.RoleViewer)
	slow := stalledClient(t, env)

	// The slow client reads nothing while n readings of two series are
	// published one per item: its writer blocks on the full socket, its
	// queue passes the high-water mark and the rest is thinned.
	const n = 2000
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range n {
		r := reading([]string{"s-1", "s-2"}[i%2], float64(i))
		r.TS = base.Add(time.Duration(i) * time.Millisecond)
		env.hub.PublishReadings([]model.Reading{r})
		if v := readingOf(t, fast.next()).Value; v != float64(i) {
			t.Fatalf("fast client: reading %d has value %v", i, v)
		}
	}
	thinned := env.counter("watchroom_ws_readings_thinned_total", "", "")
	if thinned == 0 {
		t.Fatal("nothing thinned for a client that read nothing")
	}
	// Now it reads: what was queued, one gap, then the latest of each series.
	got, gaps := 0, 0
	var gapThinned int
	latest := map[string]float64{}
	for got+gapThinned < n {
		m := slow.next()
		switch m.Type {
		case "reading":
			r := readingOf(t, m)
			if v, seen := latest[r.SensorID]; seen && r.Value <= v {
				t.Fatalf("slow client: %s went back from %v to %v", r.SensorID, v, r.Value)
			}
			latest[r.SensorID] = r.Value
			got++
		case "gap":
			var g gapData
			if err := json.Unmarshal(m.Data, &g); err != nil {
				t.Fatal(err)
			}
			sum := 0
			for _, s := range g.Series {
				if s.Thinned <= 0 || s.From > s.To {
					t.Errorf("gap series %+v", s)
				}
				sum += s.Thinned
			}
			if sum != g.Thinned || g.Thinned == 0 {
				t.Errorf("gap %s: series add up to %d", m.raw, sum)
			}
			gapThinned += g.Thinned
			gaps++
		default:
			t.Fatalf("slow client: unexpected %s", m.raw)
		}
	}
	if got+gapThinned != n || float64(gapThinned) != thinned || gaps == 0 {
		t.Fatalf("slow client: %d readings + %d thinned (in %d gaps), metric %v; want %d in all", got, gapThinned, gaps, thinned, n)
	}
	if latest["s-1"] != n-2 || latest["s-2"] != n-1 {
		t.Errorf("latest values %v, want s-1 %d and s-2 %d", latest, n-2, n-1)
	}
	if g := env.counter("watchroom_ws_gaps_total", "", ""); g != float64(gaps) {
		t.Errorf("gaps metric %v, want %d", g, gaps)
	}
	t.Logf("slow client: %d readings sent, %d thinned in %d gaps", got, gapThinned, gaps)
	slow.roundTrip(1) // still connected
}

// TestStalledReaderWriteDeadline: a client that stops reading is closed
// when one frame cannot be written within WriteTimeout, and counted.
func TestStalledReaderWriteDeadline(t *testing.T) {
	env := newEnv(t, Config{SendQueue: 16, WriteTimeout: 200 * time.Millisecond}, envOptions{sndBuf: 4096})
	slow := env.dial(dialOptions{rcvBuf: 4096})
	slow.auth(env.token("slow", model.RoleViewer))
	// One frame far larger than both socket buffers: its write blocks
	// until the deadline, as it does for any client that stops reading.
	if err := env.hub.Broadcast("note", strings.Repeat("x", 4<<20)); err != nil {
		t.Fatal(err)
	}
	env.eventually("the stalled connection is closed", func() bool { return env.hub.Stats().ActiveConnections == 0 })
	if got := env.counter("watchroom_ws_disconnects_total", "reason", reasonWriteTimeout); got != 1 {
		t.Fatalf("disconnects{reason=write_timeout} = %v, want 1", got)
	}
}

// stalledClient connects a client with a small receive buffer that reads
// auth_ok and then nothing until the test reads from it.
func stalledClient(t *testing.T, env *testEnv) *client {
	t.Helper()
	slow := env.dial(dialOptions{rcvBuf: 4096})
	slow.auth(env.token("slow", model.RoleViewer))
	// Read auth_ok on this goroutine; after it the client reads nothing.
	_ = slow.ws.SetReadDeadline(time.Now().Add(waitFor))
	if _, b, err := slow.ws.ReadMessage(); err != nil || decodeFrame(1, b)[0].Type != "auth_ok" {
		t.Fatalf("slow client auth: %q, %v", b, err)
	}
	_ = slow.ws.SetReadDeadline(time.Time{})
	return slow
}

// TestThinningCountsMessages: a queue of few items can still hold many
// readings (batches of any size); thinning starts on the message count
// too, so a client never falls far behind on few large batches.
func TestThinningCountsMessages(t *testing.T) {
	env := newEnv(t, Config{SendQueue: 256, HighWaterMsgs: 500, WriteTimeout: 10 * time.Second}, envOptions{sndBuf: 4096})
	slow := stalledClient(t, env)
	c := env.hub.snapshot()[0]
	// A batch far larger than the socket buffers: the writer takes it and
	// blocks writing it, as the client reads nothing.
	env.hub.PublishReadings(seq(1, 4000))
	env.eventually("the writer took the first batch", func() bool { _, msgs := c.send.size(); return msgs == 0 })
	for i := range 10 { // 10 items of 300: far below 128 items, above 500 messages
		env.hub.PublishReadings(seq(4001+i*300, 4000+(i+1)*300))
	}
	if got := env.counter("watchroom_ws_readings_thinned_total", "", ""); got == 0 {
		_, msgs := c.send.size()
		t.Fatalf("nothing thinned with %d messages queued in 11 items", msgs)
	}
	// It reads now: everything, or a gap for what it did not get.
	got, thinned := 0, 0
	for got+thinned < 7000 {
		m := slow.next()
		switch m.Type {
		case "reading":
			got++
		case "gap":
			var g gapData
			if err := json.Unmarshal(m.Data, &g); err != nil {
				t.Fatal(err)
			}
			thinned += g.Thinned
		}
	}
	if got+thinned != 7000 || thinned == 0 {
		t.Fatalf("%d readings + %d thinned, want 7000 with some thinned", got, thinned)
	}
}
