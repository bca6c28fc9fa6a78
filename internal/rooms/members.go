package rooms

import (
	"context"
	"sync"

	"github.com/watchroom/watchroom/internal/model"
)

// members keeps each room's member set in memory, so that chat_message
// needs no query before its insert and none after it to find whom to send
// to. PostgreSQL stays the source of truth: a room is loaded from it the
// first time it is needed, and this instance's join_room, leave_room and
// delete_room update the copy after the store has committed. Another
// instance's changes drop the room's copy (forget, on the cluster's news),
// and the next use loads it again.
//
// Safe for concurrent use; nothing is called while its lock is held.
type members struct {
	mu    sync.RWMutex
	rooms map[string]*roomMembers
	// gen counts forgets: a load that began before one may have read what
	// the forget was about, and is not kept.
	gen uint64
}

type roomMembers struct {
	room  model.Room
	users map[string]struct{}
}

func newMembers() *members { return &members{rooms: map[string]*roomMembers{}} }

// get returns the room and its members, loading them from st on a miss.
// The map returned must not be modified. A room not found is an error
// matching model.ErrNotFound.
func (m *members) get(ctx context.Context, st Store, name string) (*roomMembers, error) {
	m.mu.RLock()
	rm, gen := m.rooms[name], m.gen
	m.mu.RUnlock()
	if rm != nil {
		return rm, nil
	}
	room, _, err := st.Membership(ctx, name, "")
	if err != nil {
		return nil, err
	}
	list, err := st.RoomMembers(ctx, name)
	if err != nil {
		return nil, err
	}
	loaded := &roomMembers{room: room, users: make(map[string]struct{}, len(list))}
	for _, u := range list {
		loaded.users[u] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm := m.rooms[name]; rm != nil { // loaded meanwhile, maybe changed since
		return rm, nil
	}
	if m.gen != gen {
		return loaded, nil // maybe stale already: used once, not kept
	}
	m.rooms[name] = loaded
	return loaded, nil
}

// set records that user joined (in) or left (!in) a loaded room. Copy on
// write: readers keep the map they got.
func (m *members) set(name, user string, in bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.rooms[name]
	if rm == nil {
		return // loaded from the store when next needed
	}
	users := make(map[string]struct{}, len(rm.users)+1)
	for u := range rm.users {
		users[u] = struct{}{}
	}
	if in {
		users[user] = struct{}{}
	} else {
		delete(users, user)
	}
	m.rooms[name] = &roomMembers{room: rm.room, users: users}
}

// forget drops a room's copy (deleted, or changed by another instance).
func (m *members) forget(name string) {
	m.mu.Lock()
	delete(m.rooms, name)
	m.gen++
	m.mu.Unlock()
}

// forgetAll drops every room's copy (news of changes may have been lost).
func (m *members) forgetAll() {
	m.mu.Lock()
	clear(m.rooms)
	m.gen++
	m.mu.Unlock()
}
