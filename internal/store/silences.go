package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

const silenceColumns = `id, sensor_id, coalesce(metric, ''), coalesce(kind, ''), reason, created_by, created_at, until,
	ended_by, ended_at`

// InsertSilence stores a new silence (its ID, EndedBy and EndedAt are
// ignored) and returns it as stored. It must have passed
// model.ValidateSilence; the table's checks only catch the impossible.
func (s *Store) InsertSilence(ctx context.Context, si model.Silence) (model.Silence, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO silences (sensor_id, metric, kind, reason, created_by, created_at, until)
VALUES ($1, nullif($2, ''), nullif($3, ''), $4, $5, $6, $7)
RETURNING `+silenceColumns,
		si.SensorID, si.Metric, si.Kind, si.Reason, si.CreatedBy, alertTime(si.CreatedAt), alertTime(si.Until))
	out, err := scanSilence(row)
	if err != nil {
		return model.Silence{}, fmt.Errorf("store: insert silence: %w", err)
	}
	return out, nil
}

// EndSilence ends silence id on behalf of user at at, if it is still in
// force then. It returns the silence and whether it changed: one that had
// already ended or expired comes back unchanged. An unknown id is an
// error matching ErrNotFound.
func (s *Store) EndSilence(ctx context.Context, id int64, user string, at time.Time) (model.Silence, bool, error) {
	at = alertTime(at)
	// As in transition (alerts.go): the outer SELECT reads the snapshot
	// before the update, so it sees the row unchanged when nothing matched.
	row := s.pool.QueryRow(ctx, `WITH upd AS (
	UPDATE silences SET ended_by = $2, ended_at = $3
	WHERE id = $1 AND ended_at IS NULL AND until > $3
	RETURNING `+silenceColumns+`)
SELECT *, true FROM upd
UNION ALL
SELECT `+silenceColumns+`, false FROM silences WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM upd)`, id, user, at)
	var changed bool
	out, err := scanSilence(row, &changed)
	if err != nil {
		return model.Silence{}, false, notFound("end silence", err)
	}
	return out, changed, nil
}

// Silences lists silences newest first, as f selects them.
func (s *Store) Silences(ctx context.Context, f model.SilenceFilter) ([]model.Silence, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.SensorID != "" {
		where = append(where, "sensor_id = "+arg(f.SensorID))
	}
	if !f.InForce.IsZero() {
		where = append(where, "ended_at IS NULL AND until > "+arg(f.InForce))
	}
	q := `SELECT ` + silenceColumns + ` FROM silences`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: silences: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Silence, error) { return scanSilence(row) })
	if err != nil {
		return nil, fmt.Errorf("store: silences: %w", err)
	}
	return out, nil
}

// scanSilence scans silenceColumns, then into extra (a trailing boolean
// column) when given.
func scanSilence(row pgx.Row, extra ...any) (model.Silence, error) {
	var si model.Silence
	dest := append([]any{&si.ID, &si.SensorID, &si.Metric, &si.Kind, &si.Reason, &si.CreatedBy, &si.CreatedAt, &si.Until,
		&si.EndedBy, &si.EndedAt}, extra...)
	err := row.Scan(dest...)
	return si, err
}
