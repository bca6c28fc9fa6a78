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

// foldHead and foldTail, around an INSERT INTO readings ... RETURNING
// sensor_id, metric, ts, value, make one statement that also folds the
// rows it inserted into the 1-minute and 1-hour rollups (migrations 00007
// and 00013), in the transaction that inserts them, and returns their keys
// (sensor_id, metric, ts). Rows not inserted (duplicates, conflicts) are
// never folded in, so a redelivery does not count twice, and a late
// reading updates the buckets it falls in like any other. Data-modifying
// WITH queries always run to completion, whether the outer SELECT reads
// them or not.
//
// The inserted rows are aggregated once per statement, not row by row: one
// upsert per sensor metric and minute, the hours from the minutes. ORDER BY
// the key fixes the order in which the statement locks rollup rows (see
// insertReadingsFromStaging). SET expressions see the row as it was, so the
// CASEs compare with the old first_ts / last_ts.
const (
	foldHead = "WITH ins AS (\n"
	foldTail = `
), m AS (
	SELECT sensor_id, metric, date_bin('1 minute', ts, 'epoch'::timestamptz) AS bucket,
		count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
		min(ts) AS first_ts, (array_agg(value ORDER BY ts))[1] AS first_value,
		max(ts) AS last_ts, (array_agg(value ORDER BY ts DESC))[1] AS last_value
	FROM ins
	GROUP BY 1, 2, 3
), um AS (
	INSERT INTO readings_1m AS r
	SELECT * FROM m ORDER BY sensor_id, metric, bucket
	ON CONFLICT (sensor_id, metric, bucket) DO UPDATE SET ` + mergeRollup + `
), uh AS (
	INSERT INTO readings_1h AS r
	SELECT sensor_id, metric, date_bin('1 hour', bucket, 'epoch'::timestamptz),
		sum(count), sum(sum), min(min), max(max),
		min(first_ts), (array_agg(first_value ORDER BY first_ts))[1],
		max(last_ts), (array_agg(last_value ORDER BY last_ts DESC))[1]
	FROM m
	GROUP BY 1, 2, 3
	ORDER BY 1, 2, 3
	ON CONFLICT (sensor_id, metric, bucket) DO UPDATE SET ` + mergeRollup + `
)
SELECT sensor_id, metric, ts FROM ins`
)

// mergeRollup adds a batch's aggregate (excluded) to a stored bucket (r).
const mergeRollup = `count = r.count + excluded.count,
	sum = r.sum + excluded.sum,
	min = least(r.min, excluded.min),
	max = greatest(r.max, excluded.max),
	first_ts = least(r.first_ts, excluded.first_ts),
	first_value = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_value ELSE r.first_value END,
	last_ts = greatest(r.last_ts, excluded.last_ts),
	last_value = CASE WHEN excluded.last_ts > r.last_ts THEN excluded.last_value ELSE r.last_value END`

// readingBuckets bins on date_bin with the Unix epoch as origin, so buckets
// start at round UTC times (a 1 h bucket starts on the hour) whatever from
// is, and the same bucket has the same bounds in every query.
//
// It reads each stretch of [from, to] from the coarsest source that holds
// it exactly (see bucketPlan): whole hours from readings_1h ($11-$12),
// whole minutes from readings_1m ($7-$10), the partial minutes at either
// end from readings ($3-$6). Each branch aggregates per output bucket
// first, so the outer query sums a few rows per bucket; a 1 h or 1 m
// rollup bucket never straddles two output buckets, as the output width is
// a multiple of it and all are aligned on the epoch. An empty range (lo =
// hi) reads nothing: each branch is an index range scan on the series.
const readingBuckets = `WITH parts AS (
	SELECT date_bin($13, ts, 'epoch'::timestamptz) AS b, min(value) AS min, sum(value) AS sum, max(value) AS max, count(*) AS count
	FROM readings WHERE sensor_id = $1 AND metric = $2 AND ts >= $3 AND ts < $4 GROUP BY 1
	UNION ALL
	SELECT date_bin($13, ts, 'epoch'::timestamptz), min(value), sum(value), max(value), count(*)
	FROM readings WHERE sensor_id = $1 AND metric = $2 AND ts >= $5 AND ts < $6 GROUP BY 1
	UNION ALL
	SELECT date_bin($13, bucket, 'epoch'::timestamptz), min(min), sum(sum), max(max), sum(count)::bigint
	FROM readings_1m WHERE sensor_id = $1 AND metric = $2 AND ((bucket >= $7 AND bucket < $8) OR (bucket >= $9 AND bucket < $10)) GROUP BY 1
	UNION ALL
	SELECT date_bin($13, bucket, 'epoch'::timestamptz), min(min), sum(sum), max(max), sum(count)::bigint
	FROM readings_1h WHERE sensor_id = $1 AND metric = $2 AND bucket >= $11 AND bucket < $12 GROUP BY 1
)
SELECT b, min(min), sum(sum) / sum(count), max(max), sum(count)::bigint
FROM parts
GROUP BY b
ORDER BY b DESC
LIMIT $14`

// span is a half-open time range [lo, hi); empty when lo >= hi.
type span struct{ lo, hi time.Time }

// bucketPlan splits [from, to] (to inclusive, as in the API) into the
// stretches read from each source: raw readings (two: head and tail), 1m
// rollups (two) and 1h rollups (one). A bucket width that is a multiple
// of one hour reads whole hours from readings_1h, the partial hours at the
// ends from readings_1m; a multiple of one minute reads whole minutes from
// readings_1m; any other width reads raw readings only. Rollups hold every
// reading ever stored (they are written with it), so the result is the
// same as from raw data while raw data is kept, and still there once raw
// retention has dropped it.
func bucketPlan(from, to time.Time, bucket time.Duration) (raw, m1 [2]span, h1 span) {
	end := to.Add(time.Microsecond) // PostgreSQL's resolution: [from, end) = [from, to]
	raw[0] = span{from, end}
	if bucket%time.Minute != 0 {
		return raw, m1, h1
	}
	mLo, mHi := ceilTime(from, time.Minute), end.Truncate(time.Minute)
	if !mLo.Before(mHi) {
		return raw, m1, h1
	}
	raw = [2]span{{from, mLo}, {mHi, end}}
	m1[0] = span{mLo, mHi}
	if bucket%time.Hour != 0 {
		return raw, m1, h1
	}
	hLo, hHi := ceilTime(from, time.Hour), end.Truncate(time.Hour)
	if !hLo.Before(hHi) {
		return raw, m1, h1
	}
	m1 = [2]span{{mLo, hLo}, {hHi, mHi}}
	h1 = span{hLo, hHi}
	return raw, m1, h1
}

// ceilTime rounds t up to a multiple of d (since the zero time, which for
// minutes and hours is the UTC minute or hour, as date_bin's epoch origin).
func ceilTime(t time.Time, d time.Duration) time.Time {
	f := t.Truncate(d)
	if f.Equal(t) {
		return f
	}
	return f.Add(d)
}

// ReadingBuckets downsamples the readings of one sensor metric with from <=
// ts <= to into buckets of the given width: min, avg, max and count per
// bucket, for the newest limit non-empty buckets, oldest first. Bucket.TS is
// the bucket's start. Buckets are aligned to multiples of bucket since the
// Unix epoch. metric is required: values of different metrics do not
// average. bucket must be at least 1µs (PostgreSQL intervals have
// microsecond resolution).
//
// Widths that are whole minutes or hours are answered from the rollups
// where they cover the range (bucketPlan), so they reach back as far as
// the rollups are kept, past raw retention, and a week of per-second
// readings costs a few hundred rollup rows instead of 600,000 readings.
func (s *Store) ReadingBuckets(ctx context.Context, sensorID, metric string, from, to time.Time, bucket time.Duration, limit int) ([]model.Bucket, error) {
	switch {
	case metric == "":
		return nil, errors.New("store: reading buckets: metric is required")
	case bucket < time.Microsecond:
		return nil, errors.New("store: reading buckets: bucket must be at least 1µs")
	case limit <= 0:
		return nil, errors.New("store: reading buckets: limit must be positive")
	}
	raw, m1, h1 := bucketPlan(from, to, bucket)
	rows, err := s.pool.Query(ctx, readingBuckets, sensorID, metric,
		raw[0].lo, raw[0].hi, raw[1].lo, raw[1].hi,
		m1[0].lo, m1[0].hi, m1[1].lo, m1[1].hi,
		h1.lo, h1.hi, bucket, limit)
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
