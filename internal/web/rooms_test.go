package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/rooms"
)

// quietHub is a rooms.Hub that delivers nothing: the REST routes only read.
type quietHub struct{}

func (quietHub) SendToUsers([]string, string, any) error                          { return nil }
func (quietHub) SendToLocalUsers([]string, string, any) error                     { return nil }
func (quietHub) SendReliableToUsers(context.Context, []string, string, any) error { return nil }
func (quietHub) Broadcast(string, any) error                                      { return nil }

var _ rooms.Hub = quietHub{}

func TestRoomRoutes(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := testCtx(t)
	addUser(t, st, "alice", model.RoleAnalyst)
	addUser(t, st, "bob", model.RoleViewer)
	rs := rooms.New(rooms.Config{}, st, quietHub{}, nil, prometheus.NewRegistry(), nil)
	rs.Online("alice") // as the hub would on her first connection
	if _, _, err := st.CreateRoom(ctx, "ops-night", model.RoomKindChat, "alice"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		if _, err := st.InsertChatMessage(ctx, model.ChatMessage{Room: "ops-night", User: "alice", Content: fmt.Sprint("<b>", i, "</b>")}); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, st, func(c *Config) { c.Rooms = rs })
	bob := e.token(t, "bob", model.RoleViewer)

	t.Run("list", func(t *testing.T) {
		var got struct {
			Rooms []model.RoomInfo `json:"rooms"`
		}
		decode(t, e.do(t, http.MethodGet, "/api/rooms", bob, nil), &got)
		type row struct {
			name, kind      string
			members, online int
			member          bool
		}
		var rows []row
		for _, r := range got.Rooms {
			rows = append(rows, row{r.Name, r.Kind, r.Members, r.Online, r.Member != nil && *r.Member})
		}
		want := []row{{"alerts", "alerts", 2, 1, true}, {"general", "chat", 2, 1, true}, {"ops-night", "chat", 1, 1, false}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("GET /api/rooms = %+v, want %+v", rows, want)
		}
	})

	t.Run("messages", func(t *testing.T) {
		tests := []struct {
			query   string
			wantIDs string
		}{
			{"", "[1 2 3 4 5 6 7]"},
			{"?limit=3", "[5 6 7]"},
			{"?before=5&limit=3", "[2 3 4]"},
			{"?before=2", "[1]"},
			{"?before=0&limit=100", "[1 2 3 4 5 6 7]"},
		}
		for _, tt := range tests {
			var got struct {
				Room     string              `json:"room"`
				Messages []model.ChatMessage `json:"messages"`
			}
			decode(t, e.do(t, http.MethodGet, "/api/rooms/ops-night/messages"+tt.query, bob, nil), &got)
			var ids []int64
			for _, m := range got.Messages {
				ids = append(ids, m.ID)
				if m.Content != fmt.Sprint("<b>", m.ID, "</b>") || m.User != "alice" || m.Room != "ops-night" {
					t.Errorf("message %+v: content must come back as stored", m)
				}
			}
			if got.Room != "ops-night" || fmt.Sprint(ids) != tt.wantIDs {
				t.Errorf("GET messages%s = room %q ids %v, want %s", tt.query, got.Room, ids, tt.wantIDs)
			}
		}
		var empty struct {
			Messages []model.ChatMessage `json:"messages"`
		}
		decode(t, e.do(t, http.MethodGet, "/api/rooms/general/messages", bob, nil), &empty)
		if empty.Messages == nil {
			t.Error(`an empty room answers "messages": null, want []`)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			path    string
			status  int
			code    string
			message string
		}{
			{"/api/rooms/nope/messages", 404, "not_found", `no room "nope"`},
			{"/api/rooms/bad%20name/messages", 400, "bad_request", "room name: invalid character ' '"},
			{"/api/rooms/general/messages?limit=101", 400, "bad_request", "limit must be an integer from 1 to 100"},
			{"/api/rooms/general/messages?limit=0", 400, "bad_request", "limit"},
			{"/api/rooms/general/messages?before=-1", 400, "bad_request", "before must be a message id"},
			{"/api/rooms/general/messages?before=x", 400, "bad_request", "before"},
		}
		for _, tt := range tests {
			wantError(t, e.do(t, http.MethodGet, tt.path, bob, nil), tt.status, tt.code, tt.message)
		}
		wantError(t, e.do(t, http.MethodGet, "/api/rooms", "", nil), 401, "unauthorized", "Bearer")
	})
}
