package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// createReadingsIn creates the per-connection staging table of
// InsertReadings (see afterConnect), filled by stageReadings. The collation matches the key columns of readings and sensors, so the
// ORDER BYs below sort in index order. ord is the reading's index in the
// batch: it makes "the first one received wins" hold within a batch and
// lets the slow path of InsertReadings name readings by index.
const createReadingsIn = `CREATE TEMP TABLE IF NOT EXISTS readings_in (
	sensor_id text COLLATE "C" NOT NULL,
	metric    text COLLATE "C" NOT NULL,
	unit      text             NOT NULL,
	ts        timestamptz      NOT NULL,
	value     double precision NOT NULL,
	ord       integer          NOT NULL
) ON COMMIT DELETE ROWS`

// insertReadingsFromStaging moves the staged batch into readings.
// ON CONFLICT DO NOTHING makes redelivered readings no-ops and never
// overwrites a stored value. Of readings sharing a key within the batch,
// DISTINCT ON keeps the first in input order (ord), so within a batch as
// across batches the first value received stays. ORDER BY the primary key
// makes concurrent batches take their index locks in the same order, so two
// writers inserting overlapping keys wait for each other instead of
// deadlocking; the sort is needed for that anyway, so DISTINCT ON costs
// little more than the comparison of ord. The rows inserted are folded
// into the rollups by the same statement (foldHead, foldTail).
const insertReadingsFromStaging = foldHead + `INSERT INTO readings (sensor_id, metric, ts, value)
SELECT DISTINCT ON (sensor_id, metric, ts) sensor_id, metric, ts, value FROM pg_temp.readings_in
ORDER BY sensor_id, metric, ts, ord
ON CONFLICT DO NOTHING
RETURNING sensor_id, metric, ts, value` + foldTail

// storedValues returns, for the staged readings named by ord, the value
// stored under their key: equal, the reading was a duplicate; different,
// a conflict. Rows inserted by this transaction are visible, so a reading
// that lost to an earlier one of the same batch is told apart the same way.
const storedValues = `SELECT i.ord, r.value FROM pg_temp.readings_in i
JOIN readings r ON r.sensor_id = i.sensor_id AND r.metric = i.metric AND r.ts = i.ts
WHERE i.ord = ANY($1)`

// takenStamps lists the stored timestamps of each series (sensor, metric)
// within [lo, hi], for re-stamping receipt-stamped readings whose key was
// taken. One index range scan per series.
const takenStamps = `SELECT w.n, r.ts
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS w(sensor_id, metric, lo, hi, n)
JOIN readings r ON r.sensor_id = w.sensor_id COLLATE "C" AND r.metric = w.metric COLLATE "C" AND r.ts BETWEEN w.lo AND w.hi
ORDER BY w.n, r.ts`

// restampStaged moves staged readings to new timestamps, so that the
// sensors upsert below sees where they were stored.
const restampStaged = `UPDATE pg_temp.readings_in i SET ts = u.ts
FROM unnest($1::integer[], $2::timestamptz[]) AS u(ord, ts) WHERE i.ord = u.ord`

// insertRestamped inserts the re-stamped readings. A concurrent writer may
// have taken a key meanwhile: DO NOTHING, and the next round moves on.
// Like insertReadingsFromStaging, it folds what it inserted into the
// rollups.
const insertRestamped = foldHead + `INSERT INTO readings (sensor_id, metric, ts, value)
SELECT sensor_id, metric, ts, value FROM pg_temp.readings_in
WHERE ord = ANY($1)
ORDER BY sensor_id, metric, ts
ON CONFLICT DO NOTHING
RETURNING sensor_id, metric, ts, value` + foldTail

// upsertSensorsFromStaging folds the staged batch into sensors: per sensor
// metric, the reading with the latest ts gives last_seen, last_value and
// unit, and the earliest gives first_seen. A batch whose latest reading is
// not newer than the stored one (a late or redelivered reading) leaves
// last_* alone; the WHERE clause skips the row update entirely when nothing
// would change, so redeliveries do not churn the table. An empty unit does
// not erase a known one. Of readings sharing the latest ts, the first in
// input order is the one insertReadingsFromStaging stored. DISTINCT ON's
// ORDER BY also fixes the row lock order (see insertReadingsFromStaging).
const upsertSensorsFromStaging = `INSERT INTO sensors AS s (sensor_id, metric, unit, first_seen, last_seen, last_value)
SELECT DISTINCT ON (sensor_id, metric)
	sensor_id, metric, unit, min(ts) OVER (PARTITION BY sensor_id, metric), ts, value
FROM pg_temp.readings_in
ORDER BY sensor_id, metric, ts DESC, ord
ON CONFLICT (sensor_id, metric) DO UPDATE SET
	first_seen = least(s.first_seen, excluded.first_seen),
	last_seen  = greatest(s.last_seen, excluded.last_seen),
	last_value = CASE WHEN excluded.last_seen > s.last_seen THEN excluded.last_value ELSE s.last_value END,
	unit       = CASE WHEN excluded.last_seen > s.last_seen AND excluded.unit <> '' THEN excluded.unit ELSE s.unit END
WHERE excluded.last_seen > s.last_seen OR excluded.first_seen < s.first_seen`

// Bounds of re-stamping (see InsertReadings).
const (
	// RestampSpan is how far after its receipt stamp a reading may be
	// moved to find a free microsecond of its series.
	RestampSpan = time.Second
	// restampRounds bounds the attempts; only a concurrent writer taking
	// the chosen keys makes a second round necessary.
	restampRounds = 4
)

// InsertReadings stores a batch of readings and updates the sensors they
// belong to, all in one transaction. The store never overwrites a reading:
// the first value committed under a key (sensor, metric, ts) stays. Of the
// readings whose key is already taken, by a stored row or by an earlier
// reading of rs,
//
//   - a receipt-stamped one (Reading.Receipt) is moved to the first free
//     microsecond of its series at or after its stamp, within RestampSpan,
//     and inserted: its stamp is ours, so a taken key means another
//     reading, never a redelivery (counted in Restamped);
//   - one with the value stored is a duplicate (a redelivery): skipped;
//   - one with another value is a conflict: skipped and returned.
//
// Fresh holds exactly the readings inserted, in input order, so redelivering
// a batch is harmless and nothing downstream sees a reading twice. rs is
// not modified.
//
// This is the ingest hot path: the batch is staged in a session temporary
// table and moved from there with INSERT ... SELECT ... ON CONFLICT DO
// NOTHING, which tells the new readings by what it returns. When every
// reading is new (the common case) that is all; only a batch with a taken
// key pays for the extra statements of sortOut. See commitReadings for the
// round trips.
func (s *Store) InsertReadings(ctx context.Context, rs []model.Reading) (model.InsertResult, error) {
	if len(rs) == 0 {
		return model.InsertResult{}, nil
	}
	var res model.InsertResult
	seq, err := s.commitReadings(ctx, rs, &res)
	if err != nil {
		return model.InsertResult{}, fmt.Errorf("store: insert readings: %w", err)
	}
	// The batch's seq goes on the inserted readings (a copy: rs belongs to
	// the caller).
	fresh := make([]model.Reading, len(res.Fresh))
	for i, r := range res.Fresh {
		r.Seq = seq
		fresh[i] = r
	}
	res.Fresh = fresh
	res.Seq = seq
	return res, nil
}

// commitReadings is InsertReadings' transaction, in two round trips when
// every reading is new: the first sends the begin, the seq, the raw
// horizon, the staging of rs, the unstaging of sealed readings, the insert
// (which folds the rollups) and the sensors upsert together, a pipeline the
// server runs statement after statement without waiting for the client;
// the second the commit. Under load every round trip also waits for the
// writer's goroutine to be scheduled again, so their number, more than the
// statements' own cost, sets the commit time. Only a batch with a taken key
// adds sortOut's statements between the two. It fills res and returns the
// batch's seq.
func (s *Store) commitReadings(ctx context.Context, rs []model.Reading, res *model.InsertResult) (int64, error) {
	var (
		seq     int64
		horizon time.Time
		keys    []readingKey
		refused []bool // by index in rs: past retention, unstaged
	)
	nRefused := 0
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(takeReadingSeq).QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	b.Queue(selectRawHorizon).QueryRow(func(row pgx.Row) error { return row.Scan(&horizon) })
	b.Queue(stageReadings, stagedColumns(rs)...)
	b.Queue(unstageSealedReadings).Query(func(rows pgx.Rows) error {
		ords, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("past retention: %w", err)
		}
		if len(ords) > 0 {
			refused, nRefused = make([]bool, len(rs)), len(ords)
			for _, o := range ords {
				refused[o] = true
			}
		}
		return nil
	})
	b.Queue(insertReadingsFromStaging).Query(func(rows pgx.Rows) (err error) {
		keys, err = collectKeys(rows)
		return err
	})
	b.Queue(upsertSensorsFromStaging)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx) // after the commit a no-op; on failure, as in pgx.BeginFunc
	if err := br.Close(); err != nil {
		return 0, err
	}
	switch {
	case len(keys) == len(rs): // all new: the common case
		*res = model.InsertResult{Fresh: rs}
	case len(keys) == len(rs)-nRefused: // the others all new
		res.Fresh = make([]model.Reading, 0, len(keys))
		for i, r := range rs {
			if !refused[i] {
				res.Fresh = append(res.Fresh, r)
			}
		}
	default:
		var err error
		if *res, err = sortOut(ctx, tx, rs, keys, refused); err != nil {
			return 0, err
		}
		if res.Restamped > 0 {
			// The sensors upsert saw the re-stamped readings at their old
			// stamps; the later ones may move last_seen on.
			if _, err := tx.Exec(ctx, upsertSensorsFromStaging); err != nil {
				return 0, fmt.Errorf("sensors: %w", err)
			}
		}
	}
	if nRefused > 0 {
		for i, r := range rs {
			if refused[i] {
				res.PastRetention = append(res.PastRetention, r)
			}
		}
		res.RawHorizon = horizon
	}
	return seq, tx.Commit(ctx)
}

// stageReadings fills the staging table from one array per column; ord is
// the reading's index in the batch. In a pipeline with the statements
// around it, where COPY (a round trip of its own) cannot go.
const stageReadings = `INSERT INTO pg_temp.readings_in (sensor_id, metric, unit, ts, value, ord)
SELECT sensor_id, metric, unit, ts, value, (n - 1)::integer
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::double precision[])
	WITH ORDINALITY AS x(sensor_id, metric, unit, ts, value, n)`

// stagedColumns returns stageReadings' arguments for rs.
func stagedColumns(rs []model.Reading) []any {
	sensors := make([]string, len(rs))
	metrics := make([]string, len(rs))
	units := make([]string, len(rs))
	tss := make([]time.Time, len(rs))
	values := make([]float64, len(rs))
	for i, r := range rs {
		sensors[i], metrics[i], units[i], tss[i], values[i] = r.SensorID, r.Metric, r.Unit, r.TS, r.Value
	}
	return []any{sensors, metrics, units, tss, values}
}

// lockReadingWriters is the advisory lock, held until the transaction
// ends, that serializes the batch writers of all instances (one instance
// has one writer, which never waits on it) and raw retention's drops.
const lockReadingWriters = `SELECT pg_advisory_xact_lock(hashtext('watchroom.readings'))`

// takeReadingSeq takes the batch's seq (migration 00010) under
// lockReadingWriters, so batches commit in seq order, and leaves it in the
// transaction-local setting the seq column's default reads.
const takeReadingSeq = `SELECT set_config('watchroom.reading_seq', nextval('reading_seq')::text, true)::bigint
FROM (` + lockReadingWriters + `) l`

// selectRawHorizon reads the raw horizon (migration 00014).
const selectRawHorizon = `SELECT upto FROM raw_horizon`

// unstageSealedReadings removes from the staged batch the readings older than the
// raw horizon that fall in a sealed bucket: a minute or an hour of
// their series whose rollup counts readings that have no raw row any more
// (retention dropped them). Such a reading may be a repeat of one of
// those, which its key can no longer reveal, so storing it could count it
// twice: it is refused. Where the rollup's count still equals the raw rows
// of the bucket (none stored yet, history imported into an empty range, or
// readings waiting in the default partition), every reading it counts is
// still there to conflict with, and the reading goes on like any other.
// The minute and the hour are both checked, as their retentions differ.
// The horizon is read here, after takeReadingSeq took the writers' lock
// (which DropRaw takes to move it), so it holds until the batch commits.
// For a batch with no reading older than the horizon (nearly all) old is
// empty and the statement does nothing.
const unstageSealedReadings = `WITH old AS (
	SELECT DISTINCT sensor_id, metric, date_bin('1 minute', ts, 'epoch'::timestamptz) AS m
	FROM pg_temp.readings_in WHERE ts < (SELECT upto FROM raw_horizon)
), sealed AS (
	SELECT o.sensor_id, o.metric, o.m AS lo, o.m + interval '1 minute' AS hi
	FROM old o
	LEFT JOIN readings_1m r ON r.sensor_id = o.sensor_id AND r.metric = o.metric AND r.bucket = o.m
	WHERE coalesce(r.count, 0) <> (SELECT count(*) FROM readings x
		WHERE x.sensor_id = o.sensor_id AND x.metric = o.metric AND x.ts >= o.m AND x.ts < o.m + interval '1 minute')
	UNION ALL
	SELECT o.sensor_id, o.metric, o.h, o.h + interval '1 hour'
	FROM (SELECT DISTINCT sensor_id, metric, date_bin('1 hour', m, 'epoch'::timestamptz) AS h FROM old) o
	LEFT JOIN readings_1h r ON r.sensor_id = o.sensor_id AND r.metric = o.metric AND r.bucket = o.h
	WHERE coalesce(r.count, 0) <> (SELECT count(*) FROM readings x
		WHERE x.sensor_id = o.sensor_id AND x.metric = o.metric AND x.ts >= o.h AND x.ts < o.h + interval '1 hour')
)
DELETE FROM pg_temp.readings_in i USING sealed s
WHERE i.sensor_id = s.sensor_id AND i.metric = s.metric AND i.ts >= s.lo AND i.ts < s.hi
RETURNING i.ord`

// insertedKeys runs an INSERT ... RETURNING sensor_id, metric, ts and
// collects the keys.
func insertedKeys(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]readingKey, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

// collectKeys reads the keys an INSERT ... RETURNING sensor_id, metric, ts
// returned.
func collectKeys(rows pgx.Rows) ([]readingKey, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (readingKey, error) {
		var k readingKey
		var ts time.Time
		err := row.Scan(&k.sensor, &k.metric, &ts)
		k.ts = ts.UnixMicro()
		return k, err
	})
}

// sortOut is the slow path of InsertReadings, for a batch in which some
// keys were taken: it re-stamps and inserts the receipt-stamped readings
// that lost their key and tells duplicates from conflicts among the rest.
// Readings marked refused were taken out of the staged batch
// (unstageSealed) and are none of these.
func sortOut(ctx context.Context, tx pgx.Tx, rs []model.Reading, keys []readingKey, refused []bool) (model.InsertResult, error) {
	var res model.InsertResult
	inserted := make(map[readingKey]bool, len(keys))
	for _, k := range keys {
		inserted[k] = true
	}
	fresh := make([]bool, len(rs))
	ts := make([]int64, len(rs)) // where each reading is stored, in µs
	var lost, taken []int32      // receipt-stamped readings to move; the rest
	for i, r := range rs {
		ts[i] = r.TS.UnixMicro()
		k := readingKey{r.SensorID, r.Metric, ts[i]}
		switch {
		case refused != nil && refused[i]: // not staged
		case inserted[k]:
			fresh[i] = true
			delete(inserted, k) // the first of rs with the key is the one stored
		case r.Receipt:
			lost = append(lost, int32(i))
		default:
			taken = append(taken, int32(i))
		}
	}
	for round := 0; len(lost) > 0; round++ {
		if round == restampRounds {
			return res, fmt.Errorf("restamp: %d receipt-stamped readings found no free key in %d rounds", len(lost), restampRounds)
		}
		if err := freeStamps(ctx, tx, rs, lost, ts); err != nil {
			return res, err
		}
		stamps := make([]time.Time, len(lost))
		for j, i := range lost {
			stamps[j] = time.UnixMicro(ts[i]).UTC()
		}
		if _, err := tx.Exec(ctx, restampStaged, lost, stamps); err != nil {
			return res, fmt.Errorf("restamp: %w", err)
		}
		keys, err := insertedKeys(ctx, tx, insertRestamped, lost)
		if err != nil {
			return res, fmt.Errorf("restamp: %w", err)
		}
		clear(inserted)
		for _, k := range keys {
			inserted[k] = true
		}
		still := lost[:0]
		for _, i := range lost {
			if inserted[readingKey{rs[i].SensorID, rs[i].Metric, ts[i]}] {
				fresh[i] = true
				res.Restamped++
			} else {
				still = append(still, i)
			}
		}
		lost = still
	}
	if len(taken) > 0 {
		rows, err := tx.Query(ctx, storedValues, taken)
		if err != nil {
			return res, fmt.Errorf("stored values: %w", err)
		}
		var ord int32
		var v float64
		n := 0
		_, err = pgx.ForEachRow(rows, []any{&ord, &v}, func() error {
			n++
			if r := rs[ord]; r.Value == v {
				res.Duplicates++
			} else {
				res.Conflicts = append(res.Conflicts, model.Conflict{Reading: r, Stored: v})
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("stored values: %w", err)
		}
		if n != len(taken) {
			return res, fmt.Errorf("stored values: %d of %d skipped readings have no stored row", len(taken)-n, n)
		}
	}
	res.Fresh = make([]model.Reading, 0, len(rs)-len(taken))
	for i, r := range rs {
		if fresh[i] {
			r.TS = time.UnixMicro(ts[i]).UTC()
			res.Fresh = append(res.Fresh, r)
		}
	}
	return res, nil
}

// freeStamps sets ts[i], for each reading i of lost, to the first
// microsecond at or after it that no stored reading of its series and no
// other reading of lost takes, walking the series' stored stamps within
// RestampSpan. Readings of one series keep their order.
func freeStamps(ctx context.Context, tx pgx.Tx, rs []model.Reading, lost []int32, ts []int64) error {
	type series struct{ sensor, metric string }
	idx := map[series]int{}
	var groups [][]int32
	for _, i := range lost {
		k := series{rs[i].SensorID, rs[i].Metric}
		g, ok := idx[k]
		if !ok {
			g = len(groups)
			idx[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	sensors := make([]string, len(groups))
	metrics := make([]string, len(groups))
	los := make([]time.Time, len(groups))
	his := make([]time.Time, len(groups))
	for g, is := range groups {
		slices.SortStableFunc(is, func(a, b int32) int { return cmp.Compare(ts[a], ts[b]) })
		sensors[g], metrics[g] = rs[is[0]].SensorID, rs[is[0]].Metric
		los[g] = time.UnixMicro(ts[is[0]]).UTC()
		his[g] = time.UnixMicro(ts[is[len(is)-1]]).UTC().Add(RestampSpan)
	}
	rows, err := tx.Query(ctx, takenStamps, sensors, metrics, los, his)
	if err != nil {
		return fmt.Errorf("restamp: %w", err)
	}
	stored := make([][]int64, len(groups))
	var n int64
	var t time.Time
	_, err = pgx.ForEachRow(rows, []any{&n, &t}, func() error {
		stored[n-1] = append(stored[n-1], t.UnixMicro()) // WITH ORDINALITY counts from 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("restamp: %w", err)
	}
	for g, is := range groups {
		hi := his[g].UnixMicro()
		taken := stored[g] // ascending
		j := 0
		next := int64(math.MinInt64)
		for _, i := range is {
			c := max(ts[i], next)
			for j < len(taken) && taken[j] < c {
				j++
			}
			for j < len(taken) && taken[j] == c {
				c++
				j++
			}
			if c > hi {
				return fmt.Errorf("restamp: no free microsecond for %s/%s within %s of %s",
					rs[i].SensorID, rs[i].Metric, RestampSpan, rs[i].TS.Format(time.RFC3339Nano))
			}
			ts[i] = c
			next = c + 1
		}
	}
	return nil
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

// queryReadings runs q, whose rows are (sensor_id, metric, unit, ts,
// value[, seq]), and collects at most limit readings; withSeq scans the
// sixth column into Seq. op names the query in errors.
func (s *Store) queryReadings(ctx context.Context, op string, limit int, withSeq bool, q string, args ...any) ([]model.Reading, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	out := make([]model.Reading, 0, min(limit, 1024))
	var r model.Reading
	dest := []any{&r.SensorID, &r.Metric, &r.Unit, &r.TS, &r.Value}
	if withSeq {
		dest = append(dest, &r.Seq)
	}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

// Readings returns the newest limit readings of one sensor with from <= ts
// <= to, oldest first. metric "" means every metric of the sensor, ordered
// by ts, then metric. Unit is the sensor metric's current unit. limit must
// be positive; callers cap it.
func (s *Store) Readings(ctx context.Context, sensorID, metric string, from, to time.Time, limit int) ([]model.Reading, error) {
	if limit <= 0 {
		return nil, errors.New("store: readings: limit must be positive")
	}
	out, err := s.queryReadings(ctx, "readings", limit, false, selectReadings, sensorID, metric, from, to, limit)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out) // fetched newest first to apply the limit at the recent end
	return out, nil
}
