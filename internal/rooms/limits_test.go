package rooms

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

// A flood of create_room (the security review sent 1,000 over 25
// sockets) is refused past the per-user rate and cap, and what is created
// goes out as one small room_created each, never the whole list.
func TestCreateRoomLimits(t *testing.T) {
	e := newEnv(t)
	e.connect("ana", "bob", "vic")
	create := func(user, room string) error {
		_, err := e.hub.call(t, user, model.RoleAnalyst, "create_room", map[string]string{"room": room})
		return err
	}

	// The burst passes, the rest of the flood is refused.
	created := 0
	for i := range 1000 {
		err := create("ana", fmt.Sprintf("flood-%d", i))
		switch {
		case err == nil:
			created++
		case errCode(err) != "rate_limited" || !strings.Contains(err.Error(), "rooms a minute; retry in"):
			t.Fatalf("create %d: %v, want rate_limited", i, err)
		}
	}
	if created != DefaultCreateBurst {
		t.Fatalf("%d of 1000 rooms created at once, want the burst %d", created, DefaultCreateBurst)
	}
	sent := e.hub.take()
	if len(sent) != created {
		t.Fatalf("%d messages sent for %d rooms created", len(sent), created)
	}
	for _, s := range sent {
		if s.typ != "room_created" || s.users != nil || len(s.data) > 300 {
			t.Errorf("sent %s to %v (%d bytes); want one small room_created broadcast per room", s.typ, s.users, len(s.data))
		}
	}
	if got := testutil.ToFloat64(e.rooms.m.rejected.WithLabelValues(reasonCreateRate)); got != float64(1000-created) {
		t.Errorf("rejected{create_rate_limited} = %v, want %d", got, 1000-created)
	}

	// Another user has a bucket of their own.
	if err := create("bob", "bobs"); err != nil {
		t.Errorf("bob's first room: %v", err)
	}

	// Over time the rate refills, up to the cap of rooms per user.
	for i := created; i < DefaultMaxRoomsPerUser; i++ {
		e.clock.advance(time.Minute / DefaultCreateRate)
		if err := create("ana", fmt.Sprintf("later-%d", i)); err != nil {
			t.Fatalf("room %d after waiting: %v", i+1, err)
		}
	}
	e.clock.advance(time.Hour)
	err := create("ana", "one-too-many")
	if errCode(err) != CodeLimitReached || !strings.Contains(err.Error(), "20 rooms") {
		t.Fatalf("room %d: %v, want %s", DefaultMaxRoomsPerUser+1, err, CodeLimitReached)
	}
	if got := testutil.ToFloat64(e.rooms.m.rejected.WithLabelValues(reasonTooManyRooms)); got != 1 {
		t.Errorf("rejected{too_many_rooms} = %v, want 1", got)
	}
	// Deleting one frees a place; the refusal did not use up the rate.
	if _, err := e.hub.call(t, "root", model.RoleAdmin, "delete_room", map[string]string{"room": "flood-0"}); err != nil {
		t.Fatal(err)
	}
	if err := create("ana", "one-too-many"); err != nil {
		t.Errorf("after a delete: %v", err)
	}
}
