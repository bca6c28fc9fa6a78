package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

func TestRequestErrors(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "vic")
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "create_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", model.MaxChatContent+1) // characters, not bytes, count
	tests := []struct {
		name     string
		user     string
		role     model.Role
		typ      string
		data     any
		wantCode string
		wantMsg  string
	}{
		{"viewer creates", "vic", model.RoleViewer, "create_room", map[string]string{"room": "x"}, "forbidden", ""},
		{"viewer posts", "vic", model.RoleViewer, "chat_message", map[string]string{"room": "general", "content": "hi"}, "forbidden", ""},
		{"viewer types", "vic", model.RoleViewer, "typing", map[string]string{"room": "general"}, "forbidden", ""},
		{"viewer writes directly", "vic", model.RoleViewer, "direct_message", map[string]string{"to": "ana", "content": "hi"}, "forbidden", ""},
		{"operator deletes", "ana", model.RoleOperator, "delete_room", map[string]string{"room": "ops"}, "forbidden", ""},
		{"name with a space", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops night"}, "bad_request", `invalid room name "ops night": invalid character ' '`},
		{"name too long", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": strings.Repeat("a", 65)}, "bad_request", "1 to 64 characters"},
		{"empty name", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": ""}, "bad_request", "invalid room name"},
		{"name with a slash", "ana", model.RoleAnalyst, "join_room", map[string]string{"room": "a/b"}, "bad_request", "invalid character '/'"},
		{"unknown kind", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "x", "kind": "voice"}, "bad_request", "unknown room kind"},
		{"name taken", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops"}, "conflict", `room "ops" already exists`},
		{"fixed name taken", "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "general"}, "conflict", "already exists"},
		{"no data", "ana", model.RoleAnalyst, "create_room", nil, "bad_request", "data must be"},
		{"data not an object", "ana", model.RoleAnalyst, "chat_message", `"hello"`, "bad_request", "data must be"},
		{"join unknown room", "ana", model.RoleAnalyst, "join_room", map[string]string{"room": "nope"}, "not_found", `no room "nope"`},
		{"leave general", "ana", model.RoleAnalyst, "leave_room", map[string]string{"room": "general"}, "bad_request", "cannot be left"},
		{"leave alerts", "ana", model.RoleAnalyst, "leave_room", map[string]string{"room": "alerts"}, "bad_request", "cannot be left"},
		{"leave unknown room", "ana", model.RoleAnalyst, "leave_room", map[string]string{"room": "nope"}, "not_found", "no room"},
		{"blank content", "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "general", "content": " \n\t "}, "bad_request", "content is empty"},
		{"oversize content", "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "general", "content": long}, "bad_request", "content is 2001 characters long; at most 2000"},
		{"NUL in content", "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "general", "content": "a\x00b"}, "bad_request", "NUL"},
		{"post to unknown room", "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "nope", "content": "hi"}, "not_found", "no room"},
		{"post without joining", "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "ops", "content": "hi"}, "forbidden", "join_room first"},
		{"type without joining", "ana", model.RoleAnalyst, "typing", map[string]string{"room": "ops"}, "forbidden", "join_room first"},
		{"unknown alert", "ana", model.RoleAnalyst, "chat_message", map[string]any{"room": "alerts", "content": "hi", "alert_id": 99}, "not_found", "no alert 99"},
		{"bad alert id", "ana", model.RoleAnalyst, "chat_message", map[string]any{"room": "alerts", "content": "hi", "alert_id": "abc"}, "bad_request", "alert_id must be a positive integer"},
		{"negative alert id", "ana", model.RoleAnalyst, "chat_message", map[string]any{"room": "alerts", "content": "hi", "alert_id": -3}, "bad_request", "alert_id"},
		{"history limit too big", "vic", model.RoleViewer, "history", map[string]any{"room": "general", "limit": 101}, "bad_request", "limit must be 1 to 100"},
		{"history limit zero", "vic", model.RoleViewer, "history", map[string]any{"room": "general", "limit": 0}, "bad_request", "limit"},
		{"history before negative", "vic", model.RoleViewer, "history", map[string]any{"room": "general", "before": -1}, "bad_request", "before"},
		{"history unknown room", "vic", model.RoleViewer, "history", map[string]any{"room": "nope"}, "not_found", "no room"},
		{"direct to unknown user", "ana", model.RoleAnalyst, "direct_message", map[string]string{"to": "zed", "content": "hi"}, "not_found", `no user "zed"`},
		{"direct to nobody", "ana", model.RoleAnalyst, "direct_message", map[string]string{"content": "hi"}, "bad_request", `needs "to"`},
		{"direct oversize", "ana", model.RoleAnalyst, "direct_message", map[string]string{"to": "bob", "content": long}, "bad_request", "at most 2000"},
		{"delete general", "root", model.RoleAdmin, "delete_room", map[string]string{"room": "general"}, "bad_request", "cannot be deleted"},
		{"delete unknown room", "root", model.RoleAdmin, "delete_room", map[string]string{"room": "nope"}, "not_found", "no room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.hub.call(t, tt.user, tt.role, tt.typ, tt.data)
			if got := errCode(err); got != tt.wantCode {
				t.Fatalf("%s: error %q (%v), reply %+v; want code %s", tt.typ, got, err, rep, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
	if extra := e.hub.take(); len(extra) != 1 || extra[0].typ != "room_created" {
		t.Errorf("refused requests sent %+v; want only the room_created of the one create", extra)
	}
	if got := testutil.ToFloat64(e.rooms.m.rejected.WithLabelValues(reasonContentTooLong)); got != 2 {
		t.Errorf("rejected{content_too_long} = %v, want 2", got)
	}
}

// decodeData unmarshals a recorded message's data.
func decodeData[T any](t *testing.T, s sent) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(s.data, &v); err != nil {
		t.Fatalf("%s data %s: %v", s.typ, s.data, err)
	}
	return v
}

func replyData[T any](t *testing.T, data any) T {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("reply data %s: %v", b, err)
	}
	return v
}

func TestCreateJoinChatLeaveDelete(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "vic", "root") // cid stays offline

	// create_room: reply created, room_created to everyone.
	rep, err := e.hub.call(t, "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops-night", "kind": "chat"})
	if err != nil {
		t.Fatal(err)
	}
	if created := replyData[model.Room](t, rep.Data); rep.Type != "created" || created.Name != "ops-night" || created.Creator != "ana" || created.Kind != "chat" {
		t.Errorf("create reply %s %+v", rep.Type, created)
	}
	got := e.hub.take()
	if len(got) != 1 || got[0].typ != "room_created" || got[0].users != nil {
		t.Fatalf("after create sent %+v; want one room_created broadcast", got)
	}
	if info := decodeData[model.RoomInfo](t, got[0]); info.Name != "ops-night" || info.Creator != "ana" || info.Members != 1 || info.Online != 1 || info.Member != nil {
		t.Errorf("room_created = %+v; want ops-night with 1 member online (its creator), no member flag", info)
	}

	// join_room: reply joined with members and history; user_joined to
	// the other online members only.
	rep, err = e.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "ops-night"})
	if err != nil {
		t.Fatal(err)
	}
	joined := replyData[struct {
		Room    string
		Members []member
		History []model.ChatMessage
	}](t, rep.Data)
	wantMembers := []member{{"ana", true}, {"bob", true}}
	if rep.Type != "joined" || joined.Room != "ops-night" || !slices.Equal(joined.Members, wantMembers) || joined.History == nil || len(joined.History) != 0 {
		t.Errorf("join reply %s %+v; want members %v and an empty history", rep.Type, joined, wantMembers)
	}
	got = e.hub.take()
	if len(got) != 1 || got[0].typ != "user_joined" || !slices.Equal(got[0].users, []string{"ana"}) {
		t.Fatalf("after join sent %+v; want user_joined to ana", got)
	}
	if ru := decodeData[roomUser](t, got[0]); ru != (roomUser{Room: "ops-night", User: "bob"}) {
		t.Errorf("user_joined = %+v", ru)
	}
	// cid joins while offline: listed as offline.
	if _, err := e.hub.call(t, "cid", model.RoleAnalyst, "join_room", map[string]string{"room": "ops-night"}); err != nil {
		t.Fatal(err)
	}
	if got := e.hub.take(); len(got) != 1 || !slices.Equal(got[0].users, []string{"ana", "bob"}) {
		t.Errorf("cid's join sent %+v; want user_joined to ana and bob", got)
	}
	// Joining again is no news.
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "ops-night"}); err != nil {
		t.Fatal(err)
	}
	if got := e.hub.take(); len(got) != 0 {
		t.Errorf("second join sent %+v, want nothing", got)
	}

	// chat_message: stored, then to every online member, sender included;
	// ids count up; content trimmed but otherwise as sent.
	contents := []string{"  <b>hello</b> & welcome \n", strings.Repeat("x", model.MaxChatContent), "third"}
	for i, c := range contents {
		rep, err := e.hub.call(t, "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "ops-night", "content": c})
		if err != nil {
			t.Fatal(err)
		}
		ack := replyData[struct {
			Room string
			ID   int64
		}](t, rep.Data)
		if rep.Type != "chat_message_sent" || ack.ID != int64(i+1) || ack.Room != "ops-night" {
			t.Errorf("reply %s %+v, want chat_message_sent id %d", rep.Type, ack, i+1)
		}
		got := e.hub.take()
		if len(got) != 1 || got[0].typ != "chat_message" || !slices.Equal(got[0].users, []string{"ana", "bob"}) {
			t.Fatalf("sent %+v; want chat_message to ana and bob", got)
		}
		m := decodeData[model.ChatMessage](t, got[0])
		if m.ID != int64(i+1) || m.User != "ana" || m.Content != strings.TrimSpace(c) || m.TS.IsZero() || m.AlertID != nil {
			t.Errorf("chat_message %+v", m)
		}
	}
	// With an alert id, as a number or a string.
	for _, id := range []any{7, "7"} {
		if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "chat_message", map[string]any{"room": "alerts", "content": "on it", "alert_id": id}); err != nil {
			t.Fatalf("alert_id %v: %v", id, err)
		}
		got := e.hub.take()
		if m := decodeData[model.ChatMessage](t, got[0]); m.AlertID == nil || *m.AlertID != 7 {
			t.Errorf("chat_message %+v, want alert_id 7", m)
		}
		// alerts is fixed: everyone online gets it.
		if !slices.Equal(got[0].users, []string{"ana", "bob", "root", "vic"}) {
			t.Errorf("alerts message to %v, want every online user", got[0].users)
		}
	}

	// list_rooms: counts and membership of the asker.
	rep, err = e.hub.call(t, "vic", model.RoleViewer, "list_rooms", nil)
	if err != nil {
		t.Fatal(err)
	}
	infos := replyData[struct{ Rooms []model.RoomInfo }](t, rep.Data).Rooms
	type row struct {
		name            string
		members, online int
		member          bool
	}
	var rows []row
	for _, ri := range infos {
		rows = append(rows, row{ri.Name, ri.Members, ri.Online, ri.Member != nil && *ri.Member})
	}
	if want := []row{{"alerts", 5, 4, true}, {"general", 5, 4, true}, {"ops-night", 3, 2, false}}; rep.Type != "room_list" || !slices.Equal(rows, want) {
		t.Errorf("room_list = %+v, want %+v", rows, want)
	}

	// leave_room: reply left; user_left to the others online.
	rep, err = e.hub.call(t, "bob", model.RoleAnalyst, "leave_room", map[string]string{"room": "ops-night"})
	if err != nil || rep.Type != "left" {
		t.Fatalf("leave = %+v, %v", rep, err)
	}
	got = e.hub.take()
	if len(got) != 1 || got[0].typ != "user_left" || !slices.Equal(got[0].users, []string{"ana"}) {
		t.Fatalf("after leave sent %+v; want user_left to ana", got)
	}
	if ru := decodeData[roomUser](t, got[0]); ru != (roomUser{Room: "ops-night", User: "bob", Reason: "left"}) {
		t.Errorf("user_left = %+v", ru)
	}
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "chat_message", map[string]string{"room": "ops-night", "content": "still here?"}); errCode(err) != "forbidden" {
		t.Errorf("posting after leaving: %v, want forbidden", err)
	}

	// delete_room: everyone gets room_deleted, no list.
	rep, err = e.hub.call(t, "root", model.RoleAdmin, "delete_room", map[string]string{"room": "ops-night"})
	if err != nil || rep.Type != "deleted" {
		t.Fatalf("delete = %+v, %v", rep, err)
	}
	got = e.hub.take()
	if len(got) != 1 || got[0].typ != "room_deleted" || got[0].users != nil || string(got[0].data) != `{"by":"root","room":"ops-night"}` {
		t.Fatalf("after delete sent %+v; want one room_deleted broadcast", got)
	}
	if _, err := e.rooms.Messages(context.Background(), "ops-night", 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("messages of a deleted room: %v, want not found", err)
	}
}

func TestHistoryPages(t *testing.T) {
	e := newEnv(t)
	e.connect("ana")
	for i := 1; i <= 120; i++ {
		if _, err := e.hub.call(t, "ana", model.RoleAnalyst, "chat_message", map[string]string{"room": "general", "content": fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.hub.take()
	tests := []struct {
		name      string
		data      map[string]any
		wantFirst int64
		wantLen   int
	}{
		{"default: newest 50", map[string]any{"room": "general"}, 71, 50},
		{"newest 100", map[string]any{"room": "general", "limit": 100}, 21, 100},
		{"before 71", map[string]any{"room": "general", "before": 71, "limit": 50}, 21, 50},
		{"before 21: the rest", map[string]any{"room": "general", "before": 21, "limit": 50}, 1, 20},
		{"before 1: nothing", map[string]any{"room": "general", "before": 1}, 0, 0},
		{"other room: empty", map[string]any{"room": "alerts"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.hub.call(t, "vic", model.RoleViewer, "history", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			h := replyData[struct {
				Room     string
				Messages []model.ChatMessage
			}](t, rep.Data)
			if rep.Type != "history" || h.Room != tt.data["room"] || h.Messages == nil || len(h.Messages) != tt.wantLen {
				t.Fatalf("reply %s room %s with %d messages; want %d", rep.Type, h.Room, len(h.Messages), tt.wantLen)
			}
			for i, m := range h.Messages {
				if m.ID != tt.wantFirst+int64(i) || m.Content != fmt.Sprint("m", m.ID) {
					t.Fatalf("message %d = %+v; want id %d, oldest first", i, m, tt.wantFirst+int64(i))
				}
			}
		})
	}
	// REST uses the same query.
	msgs, err := e.rooms.Messages(context.Background(), "general", 3, 5)
	if err != nil || len(msgs) != 2 || msgs[0].ID != 1 {
		t.Errorf("Messages(before 3) = %+v, %v", msgs, err)
	}
}

func TestTypingThrottle(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "cid")
	if _, err := e.hub.call(t, "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	e.hub.take()
	steps := []struct {
		name    string
		advance time.Duration
		user    string
		room    string
		wantTo  []string // nil: throttled
	}{
		{"first", 0, "ana", "ops", []string{"bob"}},
		{"again at once", 0, "ana", "ops", nil},
		{"again after 1.9s", 1900 * time.Millisecond, "ana", "ops", nil},
		{"another room is not throttled", 0, "ana", "general", []string{"bob", "cid"}},
		{"another user is not throttled", 0, "bob", "ops", []string{"ana"}},
		{"after 2s from the first", 100 * time.Millisecond, "ana", "ops", []string{"bob"}},
	}
	for _, s := range steps {
		e.clock.advance(s.advance)
		rep, err := e.hub.call(t, s.user, model.RoleAnalyst, "typing", map[string]string{"room": s.room})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		ack := replyData[struct{ Forwarded bool }](t, rep.Data)
		got := e.hub.take()
		if s.wantTo == nil {
			if len(got) != 0 || ack.Forwarded {
				t.Errorf("%s: sent %+v (forwarded %v), want nothing", s.name, got, ack.Forwarded)
			}
			continue
		}
		if len(got) != 1 || got[0].typ != "user_typing" || !slices.Equal(got[0].users, s.wantTo) || !ack.Forwarded {
			t.Errorf("%s: sent %+v; want user_typing to %v", s.name, got, s.wantTo)
			continue
		}
		if ru := decodeData[roomUser](t, got[0]); ru != (roomUser{Room: s.room, User: s.user}) {
			t.Errorf("%s: user_typing = %+v", s.name, ru)
		}
	}
	if got := testutil.ToFloat64(e.rooms.m.dropped.WithLabelValues(dropTypingThrottled)); got != 2 {
		t.Errorf("dropped{typing_throttled} = %v, want 2", got)
	}
}

func TestDirectMessage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, from, to string
		wantUsers      []string
	}{
		{"to an offline user", "ana", "bob", []string{"bob", "ana"}},
		{"to oneself", "ana", "ana", []string{"ana"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.hub.call(t, tt.from, model.RoleAnalyst, "direct_message", map[string]string{"to": tt.to, "content": " <i>psst</i> "})
			if err != nil {
				t.Fatal(err)
			}
			got := e.hub.take()
			if len(got) != 1 || got[0].typ != "direct_message" || !got[0].reliable || !slices.Equal(got[0].users, tt.wantUsers) {
				t.Fatalf("sent %+v; want one acked direct_message to %v", got, tt.wantUsers)
			}
			dm := decodeData[model.DirectMessage](t, got[0])
			if dm.ID == 0 || dm.From != tt.from || dm.To != tt.to || dm.Content != "<i>psst</i>" || dm.TS.IsZero() {
				t.Errorf("direct_message = %+v", dm)
			}
			ack := replyData[struct {
				ID int64
				To string
			}](t, rep.Data)
			if rep.Type != "direct_message_sent" || ack.ID != dm.ID || ack.To != tt.to {
				t.Errorf("reply %s %+v", rep.Type, ack)
			}
		})
	}
	t.Run("delivery failure is an error", func(t *testing.T) {
		e.hub.failSend = errors.New("database down")
		defer func() { e.hub.failSend = nil }()
		if _, err := e.hub.call(t, "ana", model.RoleAnalyst, "direct_message", map[string]string{"to": "bob", "content": "x"}); err == nil {
			t.Error("direct_message succeeded though it could not be queued")
		}
	})
	stored, err := e.st.DirectMessages(context.Background(), "ana", "bob", 0, 10)
	if err != nil || len(stored) != 2 {
		t.Errorf("stored ana-bob messages: %+v, %v", stored, err)
	}
}

func TestPostReliable(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "vic")
	ctx := context.Background()
	if _, err := e.hub.call(t, "cid", model.RoleAnalyst, "create_room", map[string]string{"room": "night", "kind": "alerts"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "night"}); err != nil {
		t.Fatal(err)
	}
	e.hub.take()
	tests := []struct {
		room    string
		want    []string
		wantErr error
	}{
		{"alerts", []string{"ana", "bob", "vic"}, nil},
		{"night", []string{"bob"}, nil}, // cid is a member but offline
		{"nope", nil, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.room, func(t *testing.T) {
			err := e.rooms.PostReliable(ctx, tt.room, "alert", map[string]int{"id": 1})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("PostReliable = %v, want %v", err, tt.wantErr)
			}
			got := e.hub.take()
			if tt.wantErr != nil {
				if len(got) != 0 {
					t.Errorf("sent %+v", got)
				}
				return
			}
			if len(got) != 1 || !got[0].reliable || got[0].typ != "alert" || !slices.Equal(got[0].users, tt.want) {
				t.Errorf("sent %+v; want one acked alert to %v", got, tt.want)
			}
		})
	}
}

// waitSent waits until the fake hub has recorded n messages and returns
// them.
func waitSent(t *testing.T, h *fakeHub, n int) []sent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var all []sent
	for time.Now().Before(deadline) {
		all = append(all, h.take()...)
		if len(all) >= n {
			return all
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("after 5s, %d messages sent, want %d: %+v", len(all), n, all)
	return nil
}

func TestPresenceWithGrace(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.rooms.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if _, _, err := e.st.CreateRoom(context.Background(), "ops", model.RoomKindChat, "bob"); err != nil {
		t.Fatal(err)
	}
	p := e.hub.presence

	// ana comes online: nobody else is, nothing to tell.
	p.Online("ana")
	waitPresence(t, e.rooms, "online", 1)
	// bob comes online: ana hears it in general and alerts (bob's rooms
	// she shares; ops she is not in).
	p.Online("bob")
	got := waitSent(t, e.hub, 2)
	for _, s := range got {
		ru := decodeData[roomUser](t, s)
		if s.typ != "user_joined" || ru.User != "bob" || ru.Reason != "online" || !slices.Equal(s.users, []string{"ana"}) {
			t.Errorf("sent %s %+v to %v; want user_joined of bob, reason online, to ana", s.typ, ru, s.users)
		}
	}

	// bob drops and is back within the grace: nothing.
	p.Offline("bob")
	waitTimers(t, e.clock, 1)
	e.clock.advance(9 * time.Second)
	p.Online("bob")
	waitTimers(t, e.clock, 0)
	e.clock.advance(5 * time.Second)
	// A marker to know Run went past the events above: cid comes online.
	p.Online("cid")
	got = waitSent(t, e.hub, 2)
	for _, s := range got {
		if ru := decodeData[roomUser](t, s); ru.User != "cid" {
			t.Errorf("a blip of bob sent %s %+v", s.typ, ru)
		}
	}

	// bob leaves for longer than the grace: his rooms hear it.
	p.Offline("bob")
	waitTimers(t, e.clock, 1)
	e.clock.advance(10 * time.Second)
	got = waitSent(t, e.hub, 2)
	for _, s := range got {
		ru := decodeData[roomUser](t, s)
		if s.typ != "user_left" || ru.User != "bob" || ru.Reason != "offline" || !slices.Equal(s.users, []string{"ana", "cid"}) {
			t.Errorf("sent %s %+v to %v; want user_left of bob, reason offline, to ana and cid", s.typ, ru, s.users)
		}
	}
	if got := testutil.ToFloat64(e.rooms.m.presence.WithLabelValues("reconnect_in_grace")); got != 1 {
		t.Errorf("presence{reconnect_in_grace} = %v, want 1", got)
	}
	if e.rooms.onlineUsers()[0] != "ana" || len(e.rooms.onlineUsers()) != 2 {
		t.Errorf("online = %v, want ana and cid", e.rooms.onlineUsers())
	}
}

// waitTimers waits until Run has n grace timers running.
func waitTimers(t *testing.T, c *fakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d grace timers running, want %d", c.pending(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitPresence waits until Run has counted n presence changes of kind.
func waitPresence(t *testing.T, r *Rooms, change string, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.m.presence.WithLabelValues(change)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("presence{%s} = %v, want %v", change, testutil.ToFloat64(r.m.presence.WithLabelValues(change)), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
