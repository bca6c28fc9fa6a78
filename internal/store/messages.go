package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// Chat messages of rooms, and direct messages between two users.

// InsertChatMessage stores m (Room, User, Content and AlertID are used) and
// returns it with its ID and TS set; see InsertChatMessages. An unknown
// room is an error matching ErrNotFound.
func (s *Store) InsertChatMessage(ctx context.Context, m model.ChatMessage) (model.ChatMessage, error) {
	out, err := s.InsertChatMessages(ctx, m.Room, []model.ChatMessage{m})
	if err != nil {
		return model.ChatMessage{}, err
	}
	return out[0], nil
}

// InsertChatMessages stores ms, messages to room (User, Content and
// AlertID are used), in one statement, and returns them in the same order
// with Room, ID and TS set. The IDs are the room's next ones, in the order
// of ms: the statement locks the room's row to take them, so the ids of
// one room commit in increasing order. An unknown room is an error
// matching ErrNotFound, and nothing is stored.
func (s *Store) InsertChatMessages(ctx context.Context, room string, ms []model.ChatMessage) ([]model.ChatMessage, error) {
	users := make([]string, len(ms))
	contents := make([]string, len(ms))
	alerts := make([]*int64, len(ms))
	for i, m := range ms {
		users[i], contents[i], alerts[i] = m.User, m.Content, m.AlertID
	}
	rows, err := s.pool.Query(ctx, `WITH r AS (
    UPDATE rooms SET last_message_id = last_message_id + $5 WHERE name = $1 RETURNING last_message_id - $5 AS base
)
INSERT INTO chat_messages (room, id, user_name, content, alert_id)
SELECT $1, r.base + m.n, m.user_name, m.content, m.alert_id
FROM r, unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS m(user_name, content, alert_id, n)
RETURNING id, ts`, room, users, contents, alerts, len(ms))
	if err != nil {
		return nil, fmt.Errorf("store: insert chat messages: %w", err)
	}
	type idTS struct {
		id int64
		ts time.Time
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (idTS, error) {
		var v idTS
		return v, row.Scan(&v.id, &v.ts)
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert chat messages: %w", err)
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("store: insert chat messages: room %q: %w", room, ErrNotFound)
	}
	// RETURNING follows no order; the ids follow ms's.
	slices.SortFunc(got, func(a, b idTS) int { return cmp.Compare(a.id, b.id) })
	out := make([]model.ChatMessage, len(ms))
	for i, m := range ms {
		m.Room, m.ID, m.TS = room, got[i].id, got[i].ts
		out[i] = m
	}
	return out, nil
}

const chatColumns = `room, id, user_name, content, alert_id, ts`

func collectChat(rows pgx.Rows) ([]model.ChatMessage, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.ChatMessage, error) {
		var m model.ChatMessage
		err := row.Scan(&m.Room, &m.ID, &m.User, &m.Content, &m.AlertID, &m.TS)
		return m, err
	})
}

// ChatMessages returns up to limit messages of room with ids below before
// (the newest ones when before is 0 or less), oldest first. To page
// backwards, pass the smallest id of one page as before of the next.
func (s *Store) ChatMessages(ctx context.Context, room string, before int64, limit int) ([]model.ChatMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: chat messages: limit must be positive")
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
    SELECT `+chatColumns+` FROM chat_messages WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3
) newest ORDER BY id`, room, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages: %w", err)
	}
	out, err := collectChat(rows)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages: %w", err)
	}
	return out, nil
}

// AlertMessages returns the newest limit chat messages that carry alertID,
// from any room, oldest first: the discussion of that alert.
func (s *Store) AlertMessages(ctx context.Context, alertID int64, limit int) ([]model.ChatMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: alert messages: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
    SELECT `+chatColumns+` FROM chat_messages WHERE alert_id = $1 ORDER BY ts DESC, room, id DESC LIMIT $2
) newest ORDER BY ts, room, id`, alertID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: alert messages: %w", err)
	}
	out, err := collectChat(rows)
	if err != nil {
		return nil, fmt.Errorf("store: alert messages: %w", err)
	}
	return out, nil
}

// InsertDirectMessage stores dm (From, To and Content are used) and returns
// it with its ID and TS set.
func (s *Store) InsertDirectMessage(ctx context.Context, dm model.DirectMessage) (model.DirectMessage, error) {
	err := s.pool.QueryRow(ctx, `INSERT INTO direct_messages (sender, recipient, content) VALUES ($1, $2, $3)
RETURNING id, ts`, dm.From, dm.To, dm.Content).Scan(&dm.ID, &dm.TS)
	if err != nil {
		return model.DirectMessage{}, fmt.Errorf("store: insert direct message: %w", err)
	}
	return dm, nil
}

// DirectMessages returns up to limit messages between users a and b, either
// way, with ids below before (the newest when before is 0 or less), oldest
// first.
func (s *Store) DirectMessages(ctx context.Context, a, b string, before int64, limit int) ([]model.DirectMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: direct messages: limit must be positive")
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	// least/greatest match the index on the conversation.
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
    SELECT id, sender, recipient, content, ts FROM direct_messages
    WHERE least(sender, recipient) = least($1::text, $2::text)
      AND greatest(sender, recipient) = greatest($1::text, $2::text)
      AND id < $3
    ORDER BY id DESC LIMIT $4
) newest ORDER BY id`, a, b, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages: %w", err)
	}
	out, err := collectDirect(rows)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages: %w", err)
	}
	return out, nil
}

// collectDirect scans rows of (id, sender, recipient, content, ts).
func collectDirect(rows pgx.Rows) ([]model.DirectMessage, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.DirectMessage, error) {
		var m model.DirectMessage
		err := row.Scan(&m.ID, &m.From, &m.To, &m.Content, &m.TS)
		return m, err
	})
}
