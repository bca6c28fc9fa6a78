package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// TestAuthOKIsFirst forces the race between registering a connection and
// its first frame: a broadcast lands the moment the connection is
// registered. auth_ok must still come first, and the broadcast right after.
func TestAuthOKIsFirst(t *testing.T) {
	var env *testEnv
	env = newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.afterRegister = func() {
			h.PublishReadings([]model.Reading{reading("s-1", 1)})
			_ = h.Broadcast("note", 2)
		}
	}})
	c := env.dial(dialOptions{})
	c.auth(env.token("ann", model.RoleViewer))
	c.expectType("auth_ok")
	if v := readingOf(t, c.next()).Value; v != 1 {
		t.Fatalf("after auth_ok: reading %v, want 1", v)
	}
	if v := noteOf(t, c.next()); v != 2 {
		t.Fatalf("then note %v, want 2", v)
	}
}

// seq returns readings of series s-1 with values and ts from..to.
func seq(from, to int) []model.Reading {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var rs []model.Reading
	for i := from; i <= to; i++ {
		r := reading("s-1", float64(i))
		r.TS = base.Add(time.Duration(i) * time.Microsecond)
		rs = append(rs, r)
	}
	return rs
}

func replayOf(rs []model.Reading) protocol.Replay {
	out := make([]protocol.Replayed, len(rs))
	for i, r := range rs {
		out[i] = protocol.Replayed{Type: "reading", Data: r, Key: r.ResumeKey()}
	}
	return protocol.Replay{Msgs: out}
}

// TestResumeHandOver publishes live readings while the replay is being
// read and after it, lagging behind storage as a backplane can: 90–95 are
// pushed live during the read, the replay holds 1–100, and 96–110 are
// pushed after the hand-over. The client gets every reading exactly once,
// in order: the replay, resumed, then the live ones it did not carry.
func TestResumeHandOver(t *testing.T) {
	var env *testEnv
	env = newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.HandleResume("readings", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			// Committed before the read: both replayed and (late) live.
			h.PublishReadings(seq(90, 95))
			_ = h.Broadcast("note", 7)
			return replayOf(seq(1, 100)), nil
		})
	}})
	c := env.connect("ann", model.RoleViewer)
	c.send(map[string]any{"type": "resume", "id": "r1", "data": map[string]any{"readings": map[string]string{"since": "2026-11-21T10:00:00Z"}}})
	var values []float64
	var resumed msg
	notes := 0
	for len(values) < 110 || notes == 0 {
		m := c.next()
		switch m.Type {
		case "reading":
			values = append(values, readingOf(t, m).Value)
		case "resumed":
			resumed = m
			if len(values) != 100 {
				t.Fatalf("resumed after %d readings, want the replay's 100", len(values))
			}
			// Pushed after the hand-over: 96–100 were replayed, 101–110
			// were committed after the read.
			env.hub.PublishReadings(seq(96, 110))
		case "note":
			notes++
		default:
			t.Fatalf("unexpected %s", m.raw)
		}
	}
	for i, v := range values {
		if v != float64(i+1) {
			t.Fatalf("reading %d has value %v: %v", i, v, values)
		}
	}
	if string(resumed.Ref) != `"r1"` || string(resumed.Data) != `{"readings":100}` {
		t.Errorf("resumed = %s", resumed.raw)
	}
	if got := env.counter("watchroom_ws_resumes_total", "outcome", "resumed"); got != 1 {
		t.Errorf("resumes{outcome=resumed} = %v", got)
	}
	c.roundTrip(1)
}

// TestResumeGroups: a stream that counts per group (rooms) reports every
// group asked for, zero included, and leaves out the held live copy of a
// message the replay carries.
func TestResumeGroups(t *testing.T) {
	var env *testEnv
	live := model.ChatMessage{ID: 3, Room: "general", User: "bob", Content: "live"}
	env = newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.HandleResume("rooms", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			if err := h.SendToUsers([]string{"ann"}, "chat_message", live); err != nil {
				return protocol.Replay{}, err
			}
			var msgs []protocol.Replayed
			for id := int64(2); id <= 3; id++ {
				m := model.ChatMessage{ID: id, Room: "general", User: "bob", Content: "stored"}
				msgs = append(msgs, protocol.Replayed{Type: "chat_message", Data: m, Key: m.ResumeKey(), Group: "general"})
			}
			return protocol.Replay{Msgs: msgs, Groups: []string{"general", "ops"}}, nil
		})
	}})
	c := env.connect("ann", model.RoleViewer)
	c.send(map[string]any{"type": "resume", "id": 1, "data": map[string]any{"rooms": map[string]int{"general": 1, "ops": 4}}})
	var got []string
	for len(got) < 3 {
		m := c.next()
		got = append(got, m.Type+" "+string(m.Data))
	}
	want := []string{
		`chat_message {"id":2,"room":"general","user":"bob","content":"stored","ts":"0001-01-01T00:00:00.000Z"}`,
		`chat_message {"id":3,"room":"general","user":"bob","content":"stored","ts":"0001-01-01T00:00:00.000Z"}`,
		`resumed {"rooms":{"general":2,"ops":0}}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	if extra := c.roundTrip(1); len(extra) != 0 {
		t.Errorf("after resumed: %v, want nothing (the live copy of 3 was replayed)", extra)
	}
}

// TestResumeRefused: a stream that refuses fails the whole resume with
// its reason; nothing is replayed, and live messages held meanwhile
// follow.
func TestResumeRefused(t *testing.T) {
	var env *testEnv
	env = newEnv(t, Config{ResumeMax: 5}, envOptions{setup: func(h *Hub) {
		h.HandleResume("rooms", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			return protocol.Replay{}, nil
		})
		h.HandleResume("readings", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			h.PublishReadings(seq(1, 1))
			return replayOf(seq(1, req.Max+1)), nil // one more than allowed
		})
	}})
	c := env.connect("ann", model.RoleViewer)
	c.send(map[string]any{"type": "resume", "id": 1, "data": map[string]any{"readings": map[string]string{"since": "x"}, "rooms": map[string]int{}}})
	m := c.expectType("resume_failed")
	if string(m.Data) != `{"max":5,"reason":"too_many","stream":"readings"}` {
		t.Errorf("resume_failed = %s", m.raw)
	}
	if v := readingOf(t, c.next()).Value; v != 1 {
		t.Errorf("held live reading %v, want 1", v)
	}
	if got := env.counter("watchroom_ws_resumes_total", "outcome", "too_many"); got != 1 {
		t.Errorf("resumes{outcome=too_many} = %v", got)
	}
}

func TestResumeBadRequest(t *testing.T) {
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.HandleResume("readings", ReplayReadings(&fakeHistory{}))
	}})
	c := env.connect("ann", model.RoleViewer)
	for _, data := range []string{`[]`, `null`, `{"chats":1}`, `{"readings":5}`, `{"readings":{"since":"yesterday"}}`,
		`{"readings":{"since":"2026-11-21T10:00:00Z","sensors":["bad id"]}}`} {
		c.sendText(`{"type":"resume","id":"x","data":` + data + `}`)
		m := c.expectType("error")
		var e struct{ Code string }
		_ = json.Unmarshal(m.Data, &e)
		if e.Code != protocol.CodeBadRequest {
			t.Errorf("resume %s: %s, want bad_request", data, m.raw)
		}
	}
	// The connection still works and streams live readings.
	env.hub.PublishReadings(seq(1, 1))
	if v := readingOf(t, c.next()).Value; v != 1 {
		t.Errorf("live reading after bad resumes: %v", v)
	}
}

// fakeHistory records its last call; tests read it only after the call.
type fakeHistory struct {
	since        time.Time
	only, except []string
	limit        int
	after        int64
	rs           []model.Reading
	err          error
}

func (f *fakeHistory) ReadingsFromSeq(_ context.Context, seq int64, only, except []string, limit int) ([]model.Reading, error) {
	f.after = seq
	return f.ReadingsSince(context.Background(), time.Time{}, only, except, limit)
}

func (f *fakeHistory) ReadingsSince(_ context.Context, since time.Time, only, except []string, limit int) ([]model.Reading, error) {
	f.since, f.only, f.except, f.limit = since, only, except, limit
	return f.rs, f.err
}

func TestReplayReadings(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	errDB := errors.New("db down")
	tests := []struct {
		name       string
		cursor     string
		sensors    protocol.SensorFilter
		hist       fakeHistory
		wantErr    string // reason of a refusal, code of an *Error, or "other"
		wantOnly   []string
		wantExcept []string
		wantN      int
	}{
		{"all sensors but one", `{"since":"2026-11-21T11:30:00.123456Z"}`, protocol.SensorFilter{All: true, Except: []string{"s-9"}},
			fakeHistory{rs: seq(1, 3)}, "", nil, []string{"s-9"}, 3},
		{"the subscription's list", `{"since":"2026-11-21T11:30:00Z"}`, protocol.SensorFilter{Only: []string{"s-1"}},
			fakeHistory{}, "", []string{"s-1"}, nil, 0},
		{"the request's list wins", `{"since":"2026-11-21T11:30:00Z","sensors":["s-2"]}`, protocol.SensorFilter{All: true},
			fakeHistory{}, "", []string{"s-2"}, nil, 0},
		{"too old", `{"since":"2026-11-21T10:59:59Z"}`, protocol.SensorFilter{All: true}, fakeHistory{}, protocol.RefusedTooOld, nil, nil, 0},
		{"too many", `{"since":"2026-11-21T11:30:00Z"}`, protocol.SensorFilter{All: true}, fakeHistory{rs: seq(1, 4)}, protocol.RefusedTooMany, nil, nil, 0},
		{"store error", `{"since":"2026-11-21T11:30:00Z"}`, protocol.SensorFilter{All: true}, fakeHistory{err: errDB}, "other", nil, nil, 0},
		{"no since", `{}`, protocol.SensorFilter{All: true}, fakeHistory{}, protocol.CodeBadRequest, nil, nil, 0},
		{"from a seq", `{"seq":41,"since":"2026-11-21T11:30:00Z"}`, protocol.SensorFilter{All: true}, fakeHistory{rs: seq(1, 2)}, "", nil, nil, 2},
		{"seq without since", `{"seq":41}`, protocol.SensorFilter{All: true}, fakeHistory{}, protocol.CodeBadRequest, nil, nil, 0},
		{"negative seq", `{"seq":-1,"since":"2026-11-21T11:30:00Z"}`, protocol.SensorFilter{All: true}, fakeHistory{}, protocol.CodeBadRequest, nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.hist
			r, err := ReplayReadings(&h)(context.Background(), protocol.ReplayRequest{
				User: "ann", Cursor: json.RawMessage(tt.cursor), Max: 3, MaxAge: time.Hour, Now: now, Sensors: tt.sensors})
			var ref *protocol.Refusal
			var be *protocol.Error
			switch {
			case errors.As(err, &ref):
				if ref.Reason != tt.wantErr {
					t.Fatalf("refused %q, want %q", ref.Reason, tt.wantErr)
				}
				return
			case errors.As(err, &be):
				if be.Code != tt.wantErr {
					t.Fatalf("error %v, want %q", be, tt.wantErr)
				}
				return
			case err != nil:
				if tt.wantErr != "other" {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			case tt.wantErr != "":
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if len(r.Msgs) != tt.wantN || !slices.Equal(h.only, tt.wantOnly) || !slices.Equal(h.except, tt.wantExcept) || h.limit != 4 {
				t.Errorf("replayed %d (only %v except %v limit %d), want %d (only %v except %v limit 4)",
					len(r.Msgs), h.only, h.except, h.limit, tt.wantN, tt.wantOnly, tt.wantExcept)
			}
			if strings.Contains(tt.cursor, `"seq"`) && h.after != 41 {
				t.Errorf("replayed by ts, want after seq 41 (got %d)", h.after)
			}
			if tt.wantN > 0 && r.Msgs[0].Key != seq(1, 1)[0].ResumeKey() {
				t.Errorf("first key %q", r.Msgs[0].Key)
			}
		})
	}
}

// TestResumeAnnouncedInAuth: a client that says in its auth message that
// it will resume gets no live message before its replay: what is published
// between auth_ok and the resume request is held, then sent after resumed
// unless the replay holds it. Without the resume request, the held
// messages go out when the wait ends.
func TestResumeAnnouncedInAuth(t *testing.T) {
	tm := &timers{}
	var env *testEnv
	env = newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.afterFunc = tm.afterFunc
		h.HandleResume("readings", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			return replayOf(seq(1, 5)), nil
		})
	}})
	auth := func() *client {
		c := env.dial(dialOptions{})
		c.send(map[string]any{"type": "auth", "data": map[string]any{"token": env.token("ann", model.RoleViewer), "resume": true}})
		c.expectType("auth_ok")
		return c
	}
	c := auth()
	env.eventually("ann is registered", func() bool { return env.hub.Online("ann") })
	env.hub.PublishReadings(seq(4, 7)) // 4 and 5 are also in the replay
	c.send(map[string]any{"type": "resume", "id": 1, "data": map[string]any{"readings": map[string]string{"since": "2026-11-21T10:00:00Z"}}})
	var got []string
	for len(got) < 8 {
		m := c.next()
		if m.Type == "reading" {
			got = append(got, fmt.Sprint(readingOf(t, m).Value))
		} else {
			got = append(got, m.Type+string(m.Data))
		}
	}
	want := []string{"1", "2", "3", "4", "5", `resumed{"readings":5}`, "6", "7"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	// Announced but never sent: the held messages follow when the wait ends.
	c.close(t)
	n := tm.count()
	c2 := auth()
	env.eventually("the wait is armed", func() bool { return tm.count() >= n+2 }) // expiry and resume wait
	env.hub.PublishReadings(seq(8, 8))
	tm.fire(tm.count() - 1)
	if v := readingOf(t, c2.next()).Value; v != 8 {
		t.Fatalf("after the wait: reading %v, want 8", v)
	}
	if got := env.counter("watchroom_ws_resumes_total", "outcome", "not_sent"); got != 1 {
		t.Errorf("resumes{outcome=not_sent} = %v", got)
	}
}

// TestResumeDropsLateLiveCopies: a reading committed before the replay was
// read but pushed only after the hand-over (a push follows its commit) is
// not sent again; within the window only, and counted.
func TestResumeDropsLateLiveCopies(t *testing.T) {
	clock := &fakeClock{}
	env := newEnv(t, Config{}, envOptions{setup: func(h *Hub) {
		h.now = clock.now
		h.HandleResume("readings", func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
			return replayOf(seq(1, 3)), nil
		})
	}})
	c := env.connect("ann", model.RoleViewer)
	c.send(map[string]any{"type": "resume", "id": 1, "data": map[string]any{"readings": map[string]string{"since": "2026-11-21T10:00:00Z"}}})
	for range 3 {
		c.expectType("reading")
	}
	c.expectType("resumed")
	env.hub.PublishReadings(seq(3, 4)) // 3 was replayed: only 4 goes out
	if v := readingOf(t, c.next()).Value; v != 4 {
		t.Fatalf("after the hand-over: reading %v, want 4", v)
	}
	if got := env.counter("watchroom_ws_queue_drops_total", "reason", reasonReplayed); got != 1 {
		t.Errorf("queue_drops{reason=already_replayed} = %v, want 1", got)
	}
	clock.advance(replayedWindow + time.Second)
	env.hub.PublishReadings(seq(2, 2)) // past the window: sent
	if v := readingOf(t, c.next()).Value; v != 2 {
		t.Fatalf("after the window: reading %v, want 2", v)
	}
}
