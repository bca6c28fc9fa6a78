package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

const alertColumns = `id, sensor_id, metric, kind, severity, value, limit_or_score, state,
	opened_at, updated_at, count, acked_by, resolved_by, resolved_at, resolve_note, event_id, coalesce(silence_id, 0)`

// liveAlertStates is the predicate of the partial unique index alerts_live_key;
// ON CONFLICT must repeat it word for word to use that index.
const liveAlertStates = `state IN ('open', 'acknowledged')`

// UpsertAlert folds b into the live (open or acknowledged) alert of its
// sensor, metric and kind, or opens a new alert if there is none, in one
// statement: the partial unique index on live alerts makes two concurrent
// breaches agree on one alert. A folded breach adds its count, replaces
// value and limit_or_score, may raise the severity to critical (never
// lowers it) and moves updated_at forward; b.SilenceID is stored only
// when the alert opens. It returns the alert and
// whether it was opened now.
func (s *Store) UpsertAlert(ctx context.Context, b model.AlertBreach) (model.Alert, bool, error) {
	count := b.Count
	if count < 1 {
		count = 1
	}
	row := s.pool.QueryRow(ctx, `INSERT INTO alerts AS a
	(sensor_id, metric, kind, severity, value, limit_or_score, opened_at, updated_at, count, silence_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10::bigint, 0))
ON CONFLICT (sensor_id, metric, kind) WHERE `+liveAlertStates+` DO UPDATE SET
	count          = a.count + excluded.count,
	value          = excluded.value,
	limit_or_score = excluded.limit_or_score,
	severity       = CASE WHEN excluded.severity = 'critical' THEN 'critical' ELSE a.severity END,
	updated_at     = greatest(a.updated_at, excluded.updated_at)
RETURNING `+alertColumns+`, a.xmax = 0`,
		b.SensorID, b.Metric, b.Kind, b.Severity, b.Value, b.LimitOrScore, alertTime(b.FirstAt), alertTime(b.LastAt), count,
		b.SilenceID)
	var inserted bool
	a, err := scanAlert(row, &inserted)
	if err != nil {
		return model.Alert{}, false, fmt.Errorf("store: upsert alert: %w", err)
	}
	return a, inserted, nil
}

// ResolveLiveAlert resolves the live alert of sensor, metric and kind as
// resolved_by "system" at at. It returns an error matching ErrNotFound
// when there is none (someone resolved it meanwhile).
func (s *Store) ResolveLiveAlert(ctx context.Context, sensorID, metric, kind string, at time.Time) (model.Alert, error) {
	at = alertTime(at)
	a, err := s.updateAlert(ctx, nil, `UPDATE alerts SET state = 'resolved', resolved_by = $4, resolved_at = $5,
	updated_at = greatest(updated_at, $5)
WHERE sensor_id = $1 AND metric = $2 AND kind = $3 AND `+liveAlertStates+`
RETURNING `+alertColumns, sensorID, metric, kind, model.ResolvedBySystem, at)
	if err != nil {
		return model.Alert{}, notFound("resolve live alert", err)
	}
	return a, nil
}

// lockAlertEvents takes the lock the alerts_event trigger takes (migration
// 00004) for every insert and update of alerts, held until commit.
const lockAlertEvents = `SELECT pg_advisory_xact_lock(hashtext('watchroom.alert_events'))`

// updateAlert runs q, an UPDATE of alerts returning one row scanned by
// scanAlert(row, extra), holding the alert event lock first. An UPDATE
// locks its row before its trigger takes the event lock, while
// UpsertAlert's INSERT takes the event lock (its BEFORE INSERT trigger)
// before it locks the live row it conflicts with: a person acknowledging
// an alert while a breach folds into it would wait for each other, one of
// them failing with "deadlock detected". Taking the event lock first puts
// every writer in the same order; they were serialised by it anyway.
func (s *Store) updateAlert(ctx context.Context, extra *bool, q string, args ...any) (model.Alert, error) {
	var a model.Alert
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockAlertEvents); err != nil {
			return err
		}
		var err error
		a, err = scanAlert(tx.QueryRow(ctx, q, args...), extra)
		return err
	})
	return a, err
}

// AckAlert moves open alert id to acknowledged by user at at. It returns
// the alert and whether it changed: an alert already acknowledged or
// resolved comes back unchanged (the caller tells the two apart by its
// State). An unknown id is an error matching ErrNotFound.
func (s *Store) AckAlert(ctx context.Context, id int64, user string, at time.Time) (model.Alert, bool, error) {
	// A resolved alert nobody acknowledged (it resolved by itself) may be
	// acknowledged once, keeping its state: the dashboard keeps it in view
	// until a person has seen it.
	return s.transition(ctx, "ack alert", `UPDATE alerts SET
	state = CASE WHEN state = 'open' THEN 'acknowledged' ELSE state END, acked_by = $2, acked_at = $3,
	updated_at = greatest(updated_at, $3)
WHERE id = $1 AND (state = 'open' OR (state = 'resolved' AND acked_by IS NULL))`, id, user, alertTime(at))
}

// ResolveAlert resolves live alert id by user at at, keeping note. It
// returns the alert and whether it changed: an alert already resolved
// comes back unchanged. An unknown id is an error matching ErrNotFound.
func (s *Store) ResolveAlert(ctx context.Context, id int64, user, note string, at time.Time) (model.Alert, bool, error) {
	return s.transition(ctx, "resolve alert", `UPDATE alerts SET state = 'resolved', resolved_by = $2, resolved_at = $3,
	resolve_note = $4, updated_at = greatest(updated_at, $3)
WHERE id = $1 AND `+liveAlertStates, id, user, alertTime(at), note)
}

// transition runs update (an UPDATE of alert $1 without RETURNING) and
// returns the updated row, or the unchanged row when the update matched
// nothing, in one round trip. The outer SELECT reads the snapshot taken
// before the update, so it sees the row as it was when nothing changed.
func (s *Store) transition(ctx context.Context, op, update string, args ...any) (model.Alert, bool, error) {
	var changed bool
	a, err := s.updateAlert(ctx, &changed, `WITH upd AS (`+update+` RETURNING `+alertColumns+`)
SELECT *, true FROM upd
UNION ALL
SELECT `+alertColumns+`, false FROM alerts WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM upd)`, args...)
	if err != nil {
		return model.Alert{}, false, notFound(op, err)
	}
	return a, changed, nil
}

// Alert returns alert id with its resolve note, or an error matching
// ErrNotFound.
func (s *Store) Alert(ctx context.Context, id int64) (model.Alert, error) {
	a, err := scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id), nil)
	if err != nil {
		return model.Alert{}, notFound("alert", err)
	}
	return a, nil
}

// AlertExists reports whether alert id exists, in any state.
func (s *Store) AlertExists(ctx context.Context, id int64) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("store: alert exists: %w", err)
	}
	return ok, nil
}

// Alerts lists the alerts f selects, newest (highest id) first. f.Limit
// must be positive.
func (s *Store) Alerts(ctx context.Context, f model.AlertFilter) ([]model.Alert, error) {
	if f.Limit <= 0 {
		return nil, errors.New("store: alerts: limit must be positive")
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.States) > 0 {
		where = append(where, "state = ANY("+arg(f.States)+"::text[])")
	}
	if f.SensorID != "" {
		where = append(where, "sensor_id = "+arg(f.SensorID))
	}
	if f.BeforeID > 0 {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	q := `SELECT ` + alertColumns + ` FROM alerts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(f.Limit)
	return s.queryAlerts(ctx, "alerts", q, args...)
}

// LiveAlerts returns every open or acknowledged alert, oldest first: the
// state alert detection resumes from after a restart.
func (s *Store) LiveAlerts(ctx context.Context) ([]model.Alert, error) {
	return s.queryAlerts(ctx, "live alerts", `SELECT `+alertColumns+` FROM alerts WHERE `+liveAlertStates+` ORDER BY id`)
}

// LatestOfflineAlerts returns, for every sensor metric that ever had one,
// its newest offline alert in any state. After a restart, alert detection
// uses it not to raise again an outage it has already raised.
func (s *Store) LatestOfflineAlerts(ctx context.Context) ([]model.Alert, error) {
	return s.queryAlerts(ctx, "latest offline alerts", `SELECT DISTINCT ON (sensor_id, metric) `+alertColumns+`
FROM alerts WHERE kind = 'offline' ORDER BY sensor_id, metric, id DESC`)
}

func (s *Store) queryAlerts(ctx context.Context, op, q string, args ...any) ([]model.Alert, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Alert, error) { return scanAlert(row, nil) })
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

// SeriesStats summarises, for every sensor metric in sensors, its last
// reading and its newest window readings: how many, their mean, standard
// deviation and time span. Alert detection seeds its per-series state
// with it at start, so that a restart neither waits for a new warm-up nor
// mistakes a quiet backlog for an outage. One index range scan per series.
func (s *Store) SeriesStats(ctx context.Context, window int) ([]model.SeriesStats, error) {
	if window <= 0 {
		return nil, errors.New("store: series stats: window must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT s.sensor_id, s.metric, s.last_seen, s.last_value,
	r.n, coalesce(r.mean, 0), coalesce(r.sd, 0), coalesce(extract(epoch FROM r.span)::double precision, 0)
FROM sensors s
CROSS JOIN LATERAL (
	SELECT count(*) AS n, avg(value) AS mean, stddev_pop(value) AS sd, max(ts) - min(ts) AS span
	FROM (SELECT ts, value FROM readings r
	      WHERE r.sensor_id = s.sensor_id AND r.metric = s.metric
	      ORDER BY ts DESC LIMIT $1) w
) r
ORDER BY s.sensor_id, s.metric`, window)
	if err != nil {
		return nil, fmt.Errorf("store: series stats: %w", err)
	}
	var out []model.SeriesStats
	var x model.SeriesStats
	var span float64
	_, err = pgx.ForEachRow(rows, []any{&x.SensorID, &x.Metric, &x.LastSeen, &x.LastValue, &x.N, &x.Mean, &x.StdDev, &span}, func() error {
		x.Span = time.Duration(span * float64(time.Second))
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: series stats: %w", err)
	}
	return out, nil
}

// scanAlert scans alertColumns, then into extra if not nil (a trailing
// boolean column).
func scanAlert(row pgx.Row, extra *bool) (model.Alert, error) {
	var a model.Alert
	dest := []any{&a.ID, &a.SensorID, &a.Metric, &a.Kind, &a.Severity, &a.Value, &a.LimitOrScore, &a.State,
		&a.OpenedAt, &a.UpdatedAt, &a.Count, &a.AckedBy, &a.ResolvedBy, &a.ResolvedAt, &a.Note, &a.EventID, &a.SilenceID}
	if extra != nil {
		dest = append(dest, extra)
	}
	err := row.Scan(dest...)
	return a, err
}

// ms truncates t to the protocol's millisecond precision, so that what is
// stored is exactly what clients are shown.
func alertTime(t time.Time) time.Time { return t.Truncate(time.Millisecond) }
