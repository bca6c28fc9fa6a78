package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// Rooms and their members. Fixed rooms (general, alerts) have every user as
// a member without a room_members row; the queries below add them in.

const roomColumns = `name, kind, creator, created_at, fixed`

func scanRoom(row pgx.Row, extra ...any) (model.Room, error) {
	var r model.Room
	err := row.Scan(append([]any{&r.Name, &r.Kind, &r.Creator, &r.CreatedAt, &r.Fixed}, extra...)...)
	return r, err
}

// CreateRoom stores a new room of the given kind, created by creator, who
// becomes its first member, in one transaction. created is false, with no
// error, when a room of that name exists; room is then the existing one.
func (s *Store) CreateRoom(ctx context.Context, name, kind, creator string) (room model.Room, created bool, err error) {
	if err := model.ValidRoomName(name); err != nil {
		return model.Room{}, false, fmt.Errorf("store: create room: name %q: %w", name, err)
	}
	if !model.ValidRoomKind(kind) {
		return model.Room{}, false, fmt.Errorf("store: create room: unknown kind %q", kind)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanRoom(tx.QueryRow(ctx, `INSERT INTO rooms (name, kind, creator) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING RETURNING `+roomColumns, name, kind, creator))
		if errors.Is(err, pgx.ErrNoRows) {
			room, err = scanRoom(tx.QueryRow(ctx, `SELECT `+roomColumns+` FROM rooms WHERE name = $1`, name))
			return err
		}
		if err != nil {
			return err
		}
		room, created = r, true
		_, err = tx.Exec(ctx, `INSERT INTO room_members (room, user_name) VALUES ($1, $2)`, name, creator)
		return err
	})
	if err != nil {
		return model.Room{}, false, fmt.Errorf("store: create room: %w", err)
	}
	return room, created, nil
}

// Room returns the named room, or an error matching ErrNotFound.
func (s *Store) Room(ctx context.Context, name string) (model.Room, error) {
	r, err := scanRoom(s.pool.QueryRow(ctx, `SELECT `+roomColumns+` FROM rooms WHERE name = $1`, name))
	if err != nil {
		return model.Room{}, notFound("room", err)
	}
	return r, nil
}

// Membership returns the named room and whether user is a member of it, or
// an error matching ErrNotFound when there is no such room.
func (s *Store) Membership(ctx context.Context, room, user string) (model.Room, bool, error) {
	var member bool
	r, err := scanRoom(s.pool.QueryRow(ctx, `SELECT `+roomColumns+`,
    fixed OR EXISTS (SELECT 1 FROM room_members m WHERE m.room = r.name AND m.user_name = $2)
FROM rooms r WHERE name = $1`, room, user), &member)
	if err != nil {
		return model.Room{}, false, notFound("membership", err)
	}
	return r, member, nil
}

// RoomInfos lists every room by name with its member count and how many of
// its members are in online. When user is not empty, each entry also tells
// whether user is a member.
func (s *Store) RoomInfos(ctx context.Context, user string, online []string) ([]model.RoomInfo, error) {
	if online == nil {
		online = []string{} // = ANY(NULL) would be NULL, not false
	}
	rows, err := s.pool.Query(ctx, `WITH users_total AS (
    SELECT count(*) AS members, count(*) FILTER (WHERE name = ANY($1)) AS online FROM users
)
SELECT r.name, r.kind, r.creator, r.created_at, r.fixed,
    CASE WHEN r.fixed THEN u.members ELSE coalesce(m.members, 0) END,
    CASE WHEN r.fixed THEN u.online ELSE coalesce(m.online, 0) END,
    r.fixed OR coalesce(m.me, false)
FROM rooms r
CROSS JOIN users_total u
LEFT JOIN (
    SELECT room, count(*) AS members,
        count(*) FILTER (WHERE user_name = ANY($1)) AS online,
        bool_or(user_name = $2) AS me
    FROM room_members GROUP BY room
) m ON m.room = r.name
ORDER BY r.name`, online, user)
	if err != nil {
		return nil, fmt.Errorf("store: room infos: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.RoomInfo, error) {
		var ri model.RoomInfo
		var members, on int64
		var me bool
		err := row.Scan(&ri.Name, &ri.Kind, &ri.Creator, &ri.CreatedAt, &ri.Fixed, &members, &on, &me)
		ri.Members, ri.Online = int(members), int(on)
		if user != "" {
			ri.Member = &me
		}
		return ri, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: room infos: %w", err)
	}
	return out, nil
}

// JoinRoom makes user a member of room. joined is false when user already
// was one (always, for a fixed room). An unknown room is an error matching
// ErrNotFound.
func (s *Store) JoinRoom(ctx context.Context, room, user string) (joined bool, err error) {
	var exists, inserted int64
	err = s.pool.QueryRow(ctx, `WITH r AS (SELECT name, fixed FROM rooms WHERE name = $1),
ins AS (
    INSERT INTO room_members (room, user_name) SELECT name, $2 FROM r WHERE NOT fixed
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM ins)`, room, user).Scan(&exists, &inserted)
	if err != nil {
		return false, fmt.Errorf("store: join room: %w", err)
	}
	if exists == 0 {
		return false, fmt.Errorf("store: join room %q: %w", room, ErrNotFound)
	}
	return inserted > 0, nil
}

// LeaveRoom ends user's membership of room; left is false when user was not
// a member. Fixed rooms cannot be left: their membership is not stored, so
// this reports false for them.
func (s *Store) LeaveRoom(ctx context.Context, room, user string) (left bool, err error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM room_members WHERE room = $1 AND user_name = $2`, room, user)
	if err != nil {
		return false, fmt.Errorf("store: leave room: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// RoomMembers returns the members of room sorted by name: every user for a
// fixed room. An unknown room has none.
func (s *Store) RoomMembers(ctx context.Context, room string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_name FROM room_members WHERE room = $1
UNION
SELECT name FROM users WHERE EXISTS (SELECT 1 FROM rooms WHERE name = $1 AND fixed)
ORDER BY 1`, room)
	if err != nil {
		return nil, fmt.Errorf("store: room members: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: room members: %w", err)
	}
	return out, nil
}

// UserRooms returns the rooms user is a member of, fixed rooms included,
// sorted by name.
func (s *Store) UserRooms(ctx context.Context, user string) ([]model.Room, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+roomColumns+` FROM rooms r
WHERE fixed OR EXISTS (SELECT 1 FROM room_members m WHERE m.room = r.name AND m.user_name = $1)
ORDER BY name`, user)
	if err != nil {
		return nil, fmt.Errorf("store: user rooms: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Room, error) { return scanRoom(row) })
	if err != nil {
		return nil, fmt.Errorf("store: user rooms: %w", err)
	}
	return out, nil
}

// DeleteRoom deletes room with its memberships and messages in one
// transaction and returns who its members were, sorted. Fixed rooms cannot be
// deleted: for them, as for an unknown room, the error matches ErrNotFound.
func (s *Store) DeleteRoom(ctx context.Context, room string) (members []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the room first, so a concurrent join either lands before
		// (and is listed) or fails on the foreign key after.
		var name string
		if err := tx.QueryRow(ctx, `SELECT name FROM rooms WHERE name = $1 AND NOT fixed FOR UPDATE`, room).Scan(&name); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM room_members WHERE room = $1 RETURNING user_name`, room)
		if err != nil {
			return err
		}
		if members, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM rooms WHERE name = $1`, room) // messages cascade
		return err
	})
	if err != nil {
		return nil, notFound("delete room", err)
	}
	slices.Sort(members)
	return members, nil
}

// RoomsCreatedBy counts the rooms creator has created that still exist
// (the per-user room cap of create_room).
func (s *Store) RoomsCreatedBy(ctx context.Context, creator string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM rooms WHERE creator = $1 AND NOT fixed`, creator).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: rooms created by %s: %w", creator, err)
	}
	return n, nil
}
