package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

const commandColumns = `id, sensor_id, action, params, issued_by, issued_at, status, message, responded_at, latency_ms`

// InsertCommand records a command about to be sent. An empty Status means
// pending, empty Params means {}, a zero IssuedAt means the database's now().
// An existing id is an error.
func (s *Store) InsertCommand(ctx context.Context, c model.Command) error {
	status := c.Status
	if status == "" {
		status = model.CommandPending
	}
	params := c.Params
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	var issuedAt any // nil lets COALESCE fall back to now()
	if !c.IssuedAt.IsZero() {
		issuedAt = c.IssuedAt
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO commands (id, sensor_id, action, params, issued_by, issued_at, status, message)
VALUES ($1, $2, $3, $4, $5, coalesce($6::timestamptz, now()), $7, $8)`,
		c.ID, c.SensorID, c.Action, params, c.IssuedBy, issuedAt, status, c.Message)
	if err != nil {
		return fmt.Errorf("store: insert command: %w", err)
	}
	return nil
}

// FinishCommand moves a pending command to its final status (success,
// error or timeout), recording message, the response time at and the
// latency since it was issued, and returns the updated command. Only a
// pending command moves: if id is unknown or already finished it returns an
// error matching ErrNotFound, so a response arriving after the command
// timed out does not overwrite the timeout (and vice versa).
func (s *Store) FinishCommand(ctx context.Context, id, status, message string, at time.Time) (model.Command, error) {
	switch status {
	case model.CommandSuccess, model.CommandError, model.CommandTimeout:
	default:
		return model.Command{}, fmt.Errorf("store: finish command: invalid final status %q", status)
	}
	row := s.pool.QueryRow(ctx, `UPDATE commands SET
	status = $2, message = $3, responded_at = $4,
	latency_ms = extract(epoch FROM $4 - issued_at)::double precision * 1000
WHERE id = $1 AND status = 'pending'
RETURNING `+commandColumns, id, status, message, at)
	c, err := scanCommand(row)
	if err != nil {
		return model.Command{}, notFound("finish command", err)
	}
	return c, nil
}

// TimeoutCommands finishes as timeout, with message and response time at,
// every command still pending that was issued before issuedBefore, and
// returns them. Like FinishCommand it moves pending commands only, so a
// command is finished once whoever runs it (a response, the issuing
// instance's timer, another instance's sweep): the sweep of commands whose
// issuing instance died.
func (s *Store) TimeoutCommands(ctx context.Context, issuedBefore time.Time, message string, at time.Time) ([]model.Command, error) {
	rows, err := s.pool.Query(ctx, `UPDATE commands SET
	status = 'timeout', message = $2, responded_at = $3,
	latency_ms = extract(epoch FROM $3 - issued_at)::double precision * 1000
WHERE status = 'pending' AND issued_at < $1
RETURNING `+commandColumns, issuedBefore, message, at)
	if err != nil {
		return nil, fmt.Errorf("store: time out commands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Command, error) { return scanCommand(row) })
	if err != nil {
		return nil, fmt.Errorf("store: time out commands: %w", err)
	}
	return out, nil
}

// Command returns one command, or an error matching ErrNotFound.
func (s *Store) Command(ctx context.Context, id string) (model.Command, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands WHERE id = $1`, id))
	if err != nil {
		return model.Command{}, notFound("command", err)
	}
	return c, nil
}

// Commands returns the newest limit commands, newest first, of one sensor or,
// with sensorID "", of all sensors. limit must be positive.
func (s *Store) Commands(ctx context.Context, sensorID string, limit int) ([]model.Command, error) {
	if limit <= 0 {
		return nil, errors.New("store: commands: limit must be positive")
	}
	// Two statements rather than "$1 = '' OR sensor_id = $1" so each keeps
	// its own index under a generic plan.
	var rows pgx.Rows
	var err error
	if sensorID == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+commandColumns+` FROM commands
ORDER BY issued_at DESC, id DESC LIMIT $1`, limit)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+commandColumns+` FROM commands WHERE sensor_id = $1
ORDER BY issued_at DESC, id DESC LIMIT $2`, sensorID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("store: commands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Command, error) { return scanCommand(row) })
	if err != nil {
		return nil, fmt.Errorf("store: commands: %w", err)
	}
	return out, nil
}

// PendingCommands returns every command still waiting for its device,
// oldest first, so a restarted instance can resume their timeouts.
func (s *Store) PendingCommands(ctx context.Context) ([]model.Command, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+commandColumns+` FROM commands WHERE status = 'pending'
ORDER BY issued_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: pending commands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Command, error) { return scanCommand(row) })
	if err != nil {
		return nil, fmt.Errorf("store: pending commands: %w", err)
	}
	return out, nil
}

func scanCommand(row pgx.Row) (model.Command, error) {
	var c model.Command
	err := row.Scan(&c.ID, &c.SensorID, &c.Action, (*[]byte)(&c.Params), &c.IssuedBy, &c.IssuedAt,
		&c.Status, &c.Message, &c.RespondedAt, &c.LatencyMS)
	return c, err
}
