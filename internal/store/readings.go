package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// createReadingsIn creates the per-connection staging table of
// InsertReadings (see afterConnect). Its columns match readingsInColumns;
// the collation matches the key columns of readings and sensors, so the
// ORDER BYs below sort in index order.
const createReadingsIn = `CREATE TEMP TABLE IF NOT EXISTS readings_in (
	sensor_id text COLLATE "C" NOT NULL,
	metric    text COLLATE "C" NOT NULL,
	unit      text             NOT NULL,
	ts        timestamptz      NOT NULL,
	value     double precision NOT NULL
) ON COMMIT DELETE ROWS`

var readingsInColumns = []string{"sensor_id", "metric", "unit", "ts", "value"}

// insertReadingsFromStaging moves the staged batch into readings.
// ON CONFLICT DO NOTHING makes redelivered readings, and duplicates within
// the batch, no-ops (one row of a duplicate group wins; which one is
// unspecified, as the sort is not stable). ORDER BY the
// primary key makes concurrent batches take their index locks in the same
// order, so two writers inserting overlapping keys wait for each other
// instead of deadlocking.
const insertReadingsFromStaging = `INSERT INTO readings (sensor_id, metric, ts, value)
SELECT sensor_id, metric, ts, value FROM pg_temp.readings_in
ORDER BY sensor_id, metric, ts
ON CONFLICT DO NOTHING
RETURNING sensor_id, metric, ts`

// upsertSensorsFromStaging folds the staged batch into sensors: per sensor
// metric, the reading with the latest ts gives last_seen, last_value and
// unit, and the earliest gives first_seen. A batch whose latest reading is
// not newer than the stored one (a late or redelivered reading) leaves
// last_* alone; the WHERE clause skips the row update entirely when nothing
// would change, so redeliveries do not churn the table. An empty unit does
// not erase a known one. DISTINCT ON's ORDER BY also fixes the row lock
// order (see insertReadingsFromStaging).
const upsertSensorsFromStaging = `INSERT INTO sensors AS s (sensor_id, metric, unit, first_seen, last_seen, last_value)
SELECT DISTINCT ON (sensor_id, metric)
	sensor_id, metric, unit, min(ts) OVER (PARTITION BY sensor_id, metric), ts, value
FROM pg_temp.readings_in
ORDER BY sensor_id, metric, ts DESC
ON CONFLICT (sensor_id, metric) DO UPDATE SET
	first_seen = least(s.first_seen, excluded.first_seen),
	last_seen  = greatest(s.last_seen, excluded.last_seen),
	last_value = CASE WHEN excluded.last_seen > s.last_seen THEN excluded.last_value ELSE s.last_value END,
	unit       = CASE WHEN excluded.last_seen > s.last_seen AND excluded.unit <> '' THEN excluded.unit ELSE s.unit END
WHERE excluded.last_seen > s.last_seen OR excluded.first_seen < s.first_seen`

// InsertReadings stores a batch of readings and updates the sensors they
// belong to, all in one transaction, and returns the readings that were
// new, in input order. Readings already stored (same sensor, metric and ts)
// are skipped, as are repeats within rs, so redelivering a batch is harmless
// and nothing downstream sees a reading twice.
//
// This is the ingest hot path: the batch is streamed with COPY into a
// session temporary table and moved from there with INSERT ... SELECT ...
// ON CONFLICT DO NOTHING, since COPY itself cannot skip conflicts.
func (s *Store) InsertReadings(ctx context.Context, rs []model.Reading) (fresh []model.Reading, err error) {
	if len(rs) == 0 {
		return nil, nil
	}
	var keys []readingKey
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		src := pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
			r := &rs[i]
			return []any{r.SensorID, r.Metric, r.Unit, r.TS, r.Value}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "readings_in"}, readingsInColumns, src); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		rows, err := tx.Query(ctx, insertReadingsFromStaging)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (readingKey, error) {
			var k readingKey
			var ts time.Time
			err := row.Scan(&k.sensor, &k.metric, &ts)
			k.ts = ts.UnixMicro()
			return k, err
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, upsertSensorsFromStaging); err != nil {
			return fmt.Errorf("sensors: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert readings: %w", err)
	}
	if len(keys) == len(rs) {
		return rs, nil // all new: the common case
	}
	isNew := make(map[readingKey]bool, len(keys))
	for _, k := range keys {
		isNew[k] = true
	}
	fresh = make([]model.Reading, 0, len(keys))
	for _, r := range rs {
		k := readingKey{r.SensorID, r.Metric, r.TS.UnixMicro()}
		if isNew[k] {
			fresh = append(fresh, r)
			delete(isNew, k) // a repeat within rs is not new twice
		}
	}
	return fresh, nil
}

// readingKey is the readings primary key; timestamps are stored with
// microsecond precision.
type readingKey struct {
	sensor, metric string
	ts             int64
}

// selectReadings takes the sensor's metrics from sensors (which holds every
// sensor/metric pair that has readings, kept in the same transaction as the
// readings) and walks the readings primary key backwards from to once per
// metric. A plain "WHERE sensor_id = $1 ORDER BY ts DESC" over all metrics
// would read every reading of the sensor, because metric sits between
// sensor_id and ts in the key. An empty $2 selects every metric; the filter is
// on the small sensors table, so a generic plan is still a key walk.
const selectReadings = `SELECT r.sensor_id, r.metric, m.unit, r.ts, r.value
FROM sensors m
CROSS JOIN LATERAL (
	SELECT sensor_id, metric, ts, value FROM readings
	WHERE sensor_id = m.sensor_id AND metric = m.metric AND ts >= $3 AND ts <= $4
	ORDER BY ts DESC
	LIMIT $5
) r
WHERE m.sensor_id = $1 AND ($2 = '' OR m.metric = $2)
ORDER BY r.ts DESC, r.metric DESC
LIMIT $5`

// Readings returns the newest limit readings of one sensor with from <= ts
// <= to, oldest first. metric "" means every metric of the sensor, ordered
// by ts, then metric. Unit is the sensor metric's current unit. limit must
// be positive; callers cap it.
func (s *Store) Readings(ctx context.Context, sensorID, metric string, from, to time.Time, limit int) ([]model.Reading, error) {
	if limit <= 0 {
		return nil, errors.New("store: readings: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, selectReadings, sensorID, metric, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("store: readings: %w", err)
	}
	out := make([]model.Reading, 0, min(limit, 1024))
	var r model.Reading
	_, err = pgx.ForEachRow(rows, []any{&r.SensorID, &r.Metric, &r.Unit, &r.TS, &r.Value}, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: readings: %w", err)
	}
	slices.Reverse(out) // fetched newest first to apply the limit at the recent end
	return out, nil
}

// readingBuckets bins on date_bin with the Unix epoch as origin, so buckets
// start at round UTC times (a 1 h bucket starts on the hour) whatever from
// is, and the same bucket has the same bounds in every query.
const readingBuckets = `SELECT date_bin($5, ts, 'epoch'::timestamptz) AS bucket,
	min(value), avg(value), max(value), count(*)
FROM readings
WHERE sensor_id = $1 AND metric = $2 AND ts >= $3 AND ts <= $4
GROUP BY bucket
ORDER BY bucket DESC
LIMIT $6`

// ReadingBuckets downsamples the readings of one sensor metric with from <=
// ts <= to into buckets of the given width: min, avg, max and count per
// bucket, for the newest limit non-empty buckets, oldest first. Bucket.TS is
// the bucket's start. Buckets are aligned to multiples of bucket since the
// Unix epoch. metric is required: values of different metrics do not
// average. bucket must be at least 1µs (PostgreSQL intervals have
// microsecond resolution).
func (s *Store) ReadingBuckets(ctx context.Context, sensorID, metric string, from, to time.Time, bucket time.Duration, limit int) ([]model.Bucket, error) {
	switch {
	case metric == "":
		return nil, errors.New("store: reading buckets: metric is required")
	case bucket < time.Microsecond:
		return nil, errors.New("store: reading buckets: bucket must be at least 1µs")
	case limit <= 0:
		return nil, errors.New("store: reading buckets: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, readingBuckets, sensorID, metric, from, to, bucket, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading buckets: %w", err)
	}
	out := make([]model.Bucket, 0, min(limit, 1024))
	var b model.Bucket
	_, err = pgx.ForEachRow(rows, []any{&b.TS, &b.Min, &b.Avg, &b.Max, &b.Count}, func() error {
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading buckets: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}
