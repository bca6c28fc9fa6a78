package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func TestFixedRoomsExist(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	tests := []struct {
		name, kind string
	}{
		{model.RoomGeneral, model.RoomKindChat},
		{model.RoomAlerts, model.RoomKindAlerts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Room(ctx, tt.name)
			if err != nil {
				t.Fatalf("Room: %v", err)
			}
			if r.Kind != tt.kind || !r.Fixed || r.CreatedAt.IsZero() {
				t.Errorf("room = %+v, want kind %s, fixed", r, tt.kind)
			}
			if _, err := s.DeleteRoom(ctx, tt.name); !errors.Is(err, ErrNotFound) {
				t.Errorf("DeleteRoom(%s) = %v, want ErrNotFound (fixed rooms stay)", tt.name, err)
			}
		})
	}
}

func TestCreateRoom(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	tests := []struct {
		name, room, kind, creator string
		wantCreated               bool
		wantErr                   bool
		wantCreator               string
	}{
		{"new chat room", "ops-night", model.RoomKindChat, "ana", true, false, "ana"},
		{"new alerts room", "alerts_2", model.RoomKindAlerts, "bob", true, false, "bob"},
		{"taken", "ops-night", model.RoomKindChat, "bob", false, false, "ana"},
		{"taken by a fixed room", "general", model.RoomKindChat, "bob", false, false, "system"},
		{"bad name", "ops night", model.RoomKindChat, "ana", false, true, ""},
		{"bad kind", "ops-day", "voice", "ana", false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, created, err := s.CreateRoom(ctx, tt.room, tt.kind, tt.creator)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CreateRoom succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateRoom: %v", err)
			}
			if created != tt.wantCreated || r.Name != tt.room || r.Creator != tt.wantCreator {
				t.Errorf("CreateRoom = %+v, created %v; want created %v, creator %s", r, created, tt.wantCreated, tt.wantCreator)
			}
		})
	}
	members, err := s.RoomMembers(ctx, "ops-night")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(members, []string{"ana"}) {
		t.Errorf("members of a new room = %v, want its creator only", members)
	}
	if _, err := s.Room(ctx, "ops-day"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Room(ops-day) = %v, want ErrNotFound", err)
	}
}

func TestMembership(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for _, u := range []string{"ana", "bob", "cid"} {
		if err := s.UpsertUser(ctx, u, model.RoleAnalyst, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.CreateRoom(ctx, "ops", model.RoomKindChat, "ana"); err != nil {
		t.Fatal(err)
	}

	t.Run("join", func(t *testing.T) {
		tests := []struct {
			room, user string
			want       bool
			wantErr    error
		}{
			{"ops", "bob", true, nil},
			{"ops", "bob", false, nil}, // already a member
			{"ops", "ana", false, nil}, // the creator is one
			{"general", "bob", false, nil},
			{"nope", "bob", false, ErrNotFound},
		}
		for _, tt := range tests {
			got, err := s.JoinRoom(ctx, tt.room, tt.user)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || got != tt.want {
				t.Errorf("JoinRoom(%s, %s) = %v, %v; want %v, %v", tt.room, tt.user, got, err, tt.want, tt.wantErr)
			}
		}
	})

	t.Run("members and membership", func(t *testing.T) {
		tests := []struct {
			room        string
			wantMembers []string
			member      map[string]bool
		}{
			{"ops", []string{"ana", "bob"}, map[string]bool{"ana": true, "bob": true, "cid": false}},
			{"general", []string{"ana", "bob", "cid"}, map[string]bool{"cid": true, "someone-new": true}},
			{"alerts", []string{"ana", "bob", "cid"}, map[string]bool{"ana": true}},
			{"nope", nil, nil},
		}
		for _, tt := range tests {
			got, err := s.RoomMembers(ctx, tt.room)
			if err != nil {
				t.Fatalf("RoomMembers(%s): %v", tt.room, err)
			}
			if !slices.Equal(got, tt.wantMembers) {
				t.Errorf("RoomMembers(%s) = %v, want %v", tt.room, got, tt.wantMembers)
			}
			for u, want := range tt.member {
				r, m, err := s.Membership(ctx, tt.room, u)
				if err != nil || m != want || r.Name != tt.room {
					t.Errorf("Membership(%s, %s) = %+v, %v, %v; want member %v", tt.room, u, r, m, err, want)
				}
			}
		}
		if _, _, err := s.Membership(ctx, "nope", "ana"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Membership of an unknown room = %v, want ErrNotFound", err)
		}
	})

	t.Run("user rooms", func(t *testing.T) {
		tests := []struct {
			user string
			want []string
		}{
			{"ana", []string{"alerts", "general", "ops"}},
			{"cid", []string{"alerts", "general"}},
		}
		for _, tt := range tests {
			got, err := s.UserRooms(ctx, tt.user)
			var names []string
			for _, r := range got {
				names = append(names, r.Name)
				if r.Fixed != (r.Name == "general" || r.Name == "alerts") {
					t.Errorf("room %+v: fixed flag wrong", r)
				}
			}
			if err != nil || !slices.Equal(names, tt.want) {
				t.Errorf("UserRooms(%s) = %v, %v; want %v", tt.user, names, err, tt.want)
			}
		}
	})

	t.Run("room infos", func(t *testing.T) {
		got, err := s.RoomInfos(ctx, "cid", []string{"bob", "cid", "ghost"})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			name            string
			members, online int
			member          bool
		}
		want := []row{{"alerts", 3, 2, true}, {"general", 3, 2, true}, {"ops", 2, 1, false}}
		var rows []row
		for _, ri := range got {
			if ri.Member == nil {
				t.Fatalf("%s: Member not set for a named user", ri.Name)
			}
			rows = append(rows, row{ri.Name, ri.Members, ri.Online, *ri.Member})
		}
		if !slices.Equal(rows, want) {
			t.Errorf("RoomInfos = %+v, want %+v", rows, want)
		}
		anon, err := s.RoomInfos(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ri := range anon {
			if ri.Member != nil || ri.Online != 0 {
				t.Errorf("RoomInfos without user or online: %+v", ri)
			}
		}
	})

	t.Run("leave", func(t *testing.T) {
		tests := []struct {
			room, user string
			want       bool
		}{
			{"ops", "bob", true},
			{"ops", "bob", false},
			{"general", "bob", false},
			{"nope", "bob", false},
		}
		for _, tt := range tests {
			got, err := s.LeaveRoom(ctx, tt.room, tt.user)
			if err != nil || got != tt.want {
				t.Errorf("LeaveRoom(%s, %s) = %v, %v; want %v", tt.room, tt.user, got, err, tt.want)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := s.JoinRoom(ctx, "ops", "cid"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: "ops", User: "ana", Content: "bye"}); err != nil {
			t.Fatal(err)
		}
		members, err := s.DeleteRoom(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(members, []string{"ana", "cid"}) {
			t.Errorf("DeleteRoom members = %v, want [ana cid]", members)
		}
		if _, err := s.Room(ctx, "ops"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Room after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.DeleteRoom(ctx, "ops"); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteRoom twice = %v, want ErrNotFound", err)
		}
		// The name is free again, and the messages went with the room.
		if _, created, err := s.CreateRoom(ctx, "ops", model.RoomKindChat, "bob"); err != nil || !created {
			t.Fatalf("CreateRoom again = %v, %v", created, err)
		}
		msgs, err := s.ChatMessages(ctx, "ops", 0, 10)
		if err != nil || len(msgs) != 0 {
			t.Errorf("messages of the new ops = %v, %v; want none", msgs, err)
		}
	})
}
