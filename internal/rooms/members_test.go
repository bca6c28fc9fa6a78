package rooms

import (
	"context"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

// The in-memory member copy follows join, leave and delete on this
// instance: posting is allowed and fanned out exactly as the stored
// memberships say, without a membership query per message.
func TestMembershipInMemoryFollowsChanges(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "cid", "root")
	post := func(user string) string {
		_, err := e.hub.call(t, user, model.RoleAnalyst, "chat_message", map[string]string{"room": "ops", "content": "hi"})
		return errCode(err)
	}
	if _, err := e.hub.call(t, "ana", model.RoleAnalyst, "create_room", map[string]string{"room": "ops", "kind": "chat"}); err != nil {
		t.Fatal(err)
	}
	if code := post("bob"); code != "forbidden" {
		t.Fatalf("bob posts before joining: %q, want forbidden", code)
	}
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "join_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	e.hub.take()
	if code := post("bob"); code != "" {
		t.Fatalf("bob posts after joining: %q", code)
	}
	if got := e.hub.take(); len(got) != 1 || len(got[0].users) != 2 {
		t.Fatalf("fan-out %+v, want one chat_message to ana and bob", got)
	}
	// The store agrees with what memory said.
	if _, member, err := e.st.Membership(context.Background(), "ops", "bob"); err != nil || !member {
		t.Fatalf("stored membership of bob: %v %v", member, err)
	}
	if _, err := e.hub.call(t, "bob", model.RoleAnalyst, "leave_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	if code := post("bob"); code != "forbidden" {
		t.Fatalf("bob posts after leaving: %q, want forbidden", code)
	}
	// Deleted and created again by someone else: the old members are gone.
	if _, err := e.hub.call(t, "root", model.RoleAdmin, "delete_room", map[string]string{"room": "ops"}); err != nil {
		t.Fatal(err)
	}
	if code := post("ana"); code != "not_found" {
		t.Fatalf("ana posts in a deleted room: %q, want not_found", code)
	}
	if _, err := e.hub.call(t, "cid", model.RoleAnalyst, "create_room", map[string]string{"room": "ops", "kind": "chat"}); err != nil {
		t.Fatal(err)
	}
	if code := post("ana"); code != "forbidden" {
		t.Fatalf("ana posts in the new room of the same name: %q, want forbidden", code)
	}
	if code := post("cid"); code != "" {
		t.Fatalf("cid posts in the room it created: %q", code)
	}
}
