package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// Chat messages of rooms, and direct messages between two users.

// InsertChatMessage stores m (Room, User, Content and AlertID are used) and
// returns it with its ID and TS set. The ID is the room's next one: the
// statement locks the room's row to take it, so the ids of one room commit
// in increasing order. An unknown room is an error matching ErrNotFound.
func (s *Store) InsertChatMessage(ctx context.Context, m model.ChatMessage) (model.ChatMessage, error) {
	err := s.pool.QueryRow(ctx, `WITH r AS (
    UPDATE rooms SET last_message_id = last_message_id + 1 WHERE name = $1 RETURNING last_message_id
)
INSERT INTO chat_messages (room, id, user_name, content, alert_id)
SELECT $1, r.last_message_id, $2, $3, $4 FROM r
RETURNING id, ts`, m.Room, m.User, m.Content, m.AlertID).Scan(&m.ID, &m.TS)
	if err != nil {
		return model.ChatMessage{}, notFound("insert chat message", err)
	}
	return m, nil
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
