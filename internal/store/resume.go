package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// What a client missed while it was away: the queries behind /ws resume
// (docs/protocol.md, "Resuming after a reconnect"). Each returns at most
// limit rows, oldest first; callers ask for one more than they may replay
// to tell "exactly the limit" from "too many".

// readingsSince walks the readings key once per series that has a reading
// at or after $1 (sensors.last_seen is the series' newest ts, kept in the
// same transaction as the readings), like selectReadings. $3 lists the
// only sensors wanted (NULL: every sensor), $4 sensors not wanted.
const readingsSince = `SELECT r.sensor_id, r.metric, m.unit, r.ts, r.value
FROM sensors m
CROSS JOIN LATERAL (
	SELECT sensor_id, metric, ts, value FROM readings
	WHERE sensor_id = m.sensor_id AND metric = m.metric AND ts >= $1
	ORDER BY ts
	LIMIT $2
) r
WHERE m.last_seen >= $1
  AND ($3::text[] IS NULL OR m.sensor_id = ANY($3::text[]))
  AND NOT (m.sensor_id = ANY($4::text[]))
ORDER BY r.ts, r.sensor_id, r.metric
LIMIT $2`

// ReadingsSince returns up to limit readings with ts >= since, ordered by
// ts (then sensor and metric), of the sensors in only (nil: every sensor)
// that are not in except.
func (s *Store) ReadingsSince(ctx context.Context, since time.Time, only, except []string, limit int) ([]model.Reading, error) {
	if limit <= 0 {
		return nil, errors.New("store: readings since: limit must be positive")
	}
	if except == nil {
		except = []string{}
	}
	return s.queryReadings(ctx, "readings since", limit, false, readingsSince, since, limit, only, except)
}

// readingsFromSeq reads the batch committed as seq $1 and every later one
// (migration 00010), in commit order; within a batch by ts, then key. $3
// and $4 as in readingsSince.
const readingsFromSeq = `SELECT r.sensor_id, r.metric, m.unit, r.ts, r.value, r.seq
FROM readings r
JOIN sensors m ON m.sensor_id = r.sensor_id AND m.metric = r.metric
WHERE r.seq >= $1
  AND ($3::text[] IS NULL OR r.sensor_id = ANY($3::text[]))
  AND NOT (r.sensor_id = ANY($4::text[]))
ORDER BY r.seq, r.ts, r.sensor_id, r.metric
LIMIT $2`

// ReadingsFromSeq returns up to limit readings committed in batch seq or
// later, in commit order, of the sensors in only (nil: every sensor) that
// are not in except, with their Seq set.
func (s *Store) ReadingsFromSeq(ctx context.Context, seq int64, only, except []string, limit int) ([]model.Reading, error) {
	if limit <= 0 {
		return nil, errors.New("store: readings from seq: limit must be positive")
	}
	if except == nil {
		except = []string{}
	}
	return s.queryReadings(ctx, "readings from seq", limit, true, readingsFromSeq, seq, limit, only, except)
}

// readingsInSeqRange reads the batches committed as seq $1 to $2, in
// commit order; within a batch as readingsFromSeq. The BRIN index on seq
// finds them.
const readingsInSeqRange = `SELECT r.sensor_id, r.metric, m.unit, r.ts, r.value, r.seq
FROM readings r
JOIN sensors m ON m.sensor_id = r.sensor_id AND m.metric = r.metric
WHERE r.seq BETWEEN $1 AND $2
ORDER BY r.seq, r.ts, r.sensor_id, r.metric
LIMIT $3`

// ReadingsInSeqRange returns up to limit readings committed in batches
// from to to (inclusive), in commit order, with their Seq set: what an
// instance missed of the committed stream (see the backplane package).
// A seq without rows was rolled back or stored nothing new.
func (s *Store) ReadingsInSeqRange(ctx context.Context, from, to int64, limit int) ([]model.Reading, error) {
	if limit <= 0 {
		return nil, errors.New("store: readings in seq range: limit must be positive")
	}
	return s.queryReadings(ctx, "readings in seq range", limit, true, readingsInSeqRange, from, to, limit)
}

// LastReadingSeq returns the highest seq handed to a batch so far (0 if
// none), every batch up to it being decided (committed or rolled back): it
// waits for lockReadingWriters, which InsertReadings holds from taking its seq
// to its commit, so a batch with this seq or a lower one never commits
// after the call, and one with a higher seq commits after it.
func (s *Store) LastReadingSeq(ctx context.Context) (int64, error) {
	var last int64
	var called bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockReadingWriters); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT last_value, is_called FROM reading_seq`).Scan(&last, &called)
	})
	if err != nil {
		return 0, fmt.Errorf("store: last reading seq: %w", err)
	}
	if !called {
		return 0, nil
	}
	return last, nil
}

// ChatMessagesAfter returns up to limit messages of room with ids above
// after, oldest first. A room's ids commit in increasing order (see
// InsertChatMessage), so nothing below the last id a client saw can appear
// later.
func (s *Store) ChatMessagesAfter(ctx context.Context, room string, after int64, limit int) ([]model.ChatMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: chat messages after: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+chatColumns+` FROM chat_messages
WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3`, room, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages after: %w", err)
	}
	out, err := collectChat(rows)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages after: %w", err)
	}
	return out, nil
}

// ChatMessagesOverlap returns the messages of room with ids at or below
// upTo, at most limit of them (ids above upTo-limit), that were stored at
// or after since, oldest first: the overlap a resume replays on top of
// ChatMessagesAfter when instances deliver messages out of id order
// (docs/protocol.md, "Resuming after a reconnect"). Bounded both ways, so
// the scan stays within limit rows of the primary key.
func (s *Store) ChatMessagesOverlap(ctx context.Context, room string, upTo int64, since time.Time, limit int) ([]model.ChatMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: chat messages overlap: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+chatColumns+` FROM chat_messages
WHERE room = $1 AND id <= $2 AND id > $2 - $3 AND ts >= $4 ORDER BY id`, room, upTo, limit, since)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages overlap: %w", err)
	}
	out, err := collectChat(rows)
	if err != nil {
		return nil, fmt.Errorf("store: chat messages overlap: %w", err)
	}
	return out, nil
}

// DirectMessagesOverlap is ChatMessagesOverlap for the direct messages
// user sent or received: ids at or below upTo and above upTo-limit (ids
// are shared by every user, so this may hold fewer), stored at or after
// since.
func (s *Store) DirectMessagesOverlap(ctx context.Context, user string, upTo int64, since time.Time, limit int) ([]model.DirectMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: direct messages overlap: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT id, sender, recipient, content, ts FROM direct_messages
WHERE (sender = $1 OR recipient = $1) AND id <= $2 AND id > $2 - $3 AND ts >= $4 ORDER BY id`, user, upTo, limit, since)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages overlap: %w", err)
	}
	out, err := collectDirect(rows)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages overlap: %w", err)
	}
	return out, nil
}

// AlertsAfter returns up to limit alerts whose event_id is above after, in
// their current state, ordered by event_id. Event ids commit in increasing
// order (migration 00004).
func (s *Store) AlertsAfter(ctx context.Context, after int64, limit int) ([]model.Alert, error) {
	if limit <= 0 {
		return nil, errors.New("store: alerts after: limit must be positive")
	}
	return s.queryAlerts(ctx, "alerts after", `SELECT `+alertColumns+` FROM alerts
WHERE event_id > $1 ORDER BY event_id LIMIT $2`, after, limit)
}

// DirectMessagesAfter returns up to limit direct messages that user sent
// or received with ids above after, oldest first. Ids commit in increasing
// order (migration 00004).
func (s *Store) DirectMessagesAfter(ctx context.Context, user string, after int64, limit int) ([]model.DirectMessage, error) {
	if limit <= 0 {
		return nil, errors.New("store: direct messages after: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT id, sender, recipient, content, ts FROM (
	(SELECT * FROM direct_messages WHERE sender = $1 AND id > $2 ORDER BY id LIMIT $3)
	UNION
	(SELECT * FROM direct_messages WHERE recipient = $1 AND id > $2 ORDER BY id LIMIT $3)
) m ORDER BY id LIMIT $3`, user, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages after: %w", err)
	}
	out, err := collectDirect(rows)
	if err != nil {
		return nil, fmt.Errorf("store: direct messages after: %w", err)
	}
	return out, nil
}
