package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func replayed(r protocol.Replay) []string {
	out := make([]string, len(r.Msgs))
	for i, m := range r.Msgs {
		out[i] = fmt.Sprintf("%s %s", m.Group, m.Key)
	}
	return out
}

func TestReplayRooms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.st.CreateRoom(ctx, "ops", model.RoomKindChat, "ana"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for _, room := range []string{"general", "ops"} {
			if _, err := e.st.InsertChatMessage(ctx, model.ChatMessage{Room: room, User: "ana", Content: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	replay := e.hub.replayers["rooms"]
	tests := []struct {
		cursor string
		max    int
		want   []string
		err    string
	}{
		{`{"general":1,"ops":2,"gone":0}`, 10, []string{"general c\x00general\x002", "general c\x00general\x003", "ops c\x00ops\x003"}, ""},
		{`{"general":3}`, 10, []string{}, ""},
		{`{"general":0,"ops":0}`, 5, nil, protocol.RefusedTooMany},
		{`{"bad name":0}`, 10, nil, protocol.CodeBadRequest},
		{`{"general":-1}`, 10, nil, protocol.CodeBadRequest},
		{`[1]`, 10, nil, protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		r, err := replay(ctx, protocol.ReplayRequest{User: "bob", Cursor: json.RawMessage(tt.cursor), Max: tt.max})
		if got := replayErr(err); got != tt.err {
			t.Errorf("%s: error %v, want %q", tt.cursor, err, tt.err)
			continue
		}
		if tt.err == "" && !slices.Equal(replayed(r), tt.want) {
			t.Errorf("%s: replayed %q, want %q", tt.cursor, replayed(r), tt.want)
		}
	}
	r, _ := replay(ctx, protocol.ReplayRequest{User: "bob", Cursor: json.RawMessage(`{"ops":0,"general":2}`), Max: 10})
	if !slices.Equal(r.Groups, []string{"general", "ops"}) {
		t.Errorf("groups %v: want every room asked for, sorted", r.Groups)
	}
}

func TestReplayDirect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var ids []int64
	for _, p := range [][2]string{{"ana", "bob"}, {"bob", "cid"}, {"cid", "ana"}} {
		dm, err := e.st.InsertDirectMessage(ctx, model.DirectMessage{From: p[0], To: p[1], Content: "x"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, dm.ID)
	}
	replay := e.hub.replayers["direct"]
	key := func(id int64) string { return model.DirectMessage{ID: id}.ResumeKey() }
	for _, tt := range []struct {
		user, cursor string
		max          int
		want         []string
		err          string
	}{
		{"ana", "0", 10, []string{" " + key(ids[0]), " " + key(ids[2])}, ""},
		{"ana", fmt.Sprint(ids[0]), 10, []string{" " + key(ids[2])}, ""},
		{"bob", "0", 1, nil, protocol.RefusedTooMany},
		{"bob", `"x"`, 10, nil, protocol.CodeBadRequest},
		{"bob", `-3`, 10, nil, protocol.CodeBadRequest},
	} {
		r, err := replay(ctx, protocol.ReplayRequest{User: tt.user, Cursor: json.RawMessage(tt.cursor), Max: tt.max})
		if got := replayErr(err); got != tt.err {
			t.Errorf("%s %s: error %v, want %q", tt.user, tt.cursor, err, tt.err)
			continue
		}
		if tt.err == "" && !slices.Equal(replayed(r), tt.want) {
			t.Errorf("%s %s: replayed %q, want %q", tt.user, tt.cursor, replayed(r), tt.want)
		}
	}
}

// replayErr is the refusal reason or error code of err, "" for nil.
func replayErr(err error) string {
	var ref *protocol.Refusal
	var he *protocol.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ref):
		return ref.Reason
	case errors.As(err, &he):
		return he.Code
	}
	return err.Error()
}
