package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Drop is one thing retention removed (a row of data_drops).
type Drop struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`   // raw, 1m or 1h
	Reason string    `json:"reason"` // age or size
	Target string    `json:"target"` // a partition, readings_default or a rollup table
	Upto   time.Time `json:"upto"`   // everything before it went (for a partition, its upper bound)
	Rows   int64     `json:"rows"`   // exact for row deletes, the planner's estimate for a partition
	Bytes  int64     `json:"bytes"`  // a dropped partition's size; 0 for row deletes
}

// Reasons of drops.
const (
	DropAge  = "age"
	DropSize = "size"
)

const insertDrop = `INSERT INTO data_drops (at, kind, reason, target, upto, row_count, bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

// deleteDefaultBefore removes the readings past raw retention that wait in
// the default partition (late readings older than every kept day): row by
// row, as that partition is meant to stay small.
const deleteDefaultBefore = `DELETE FROM readings_default WHERE ts < $1`

// DropRaw enforces raw retention at now: every partition whose range ends
// at or before cutoff is dropped whole (DROP TABLE: instant, no dead rows),
// and readings before cutoff in the default partition are deleted. Then,
// when maxBytes > 0 and the partitions together are larger, the oldest are
// dropped until they fit, but never the partition holding now or a later
// one, which ingest writes into (reason size; the shortfall is for the
// caller to report). Each drop is recorded in data_drops in the same
// transaction and returned.
func (s *Store) DropRaw(ctx context.Context, now, cutoff time.Time, maxBytes int64) ([]Drop, error) {
	var drops []Drop
	err := s.maintain(ctx, func(tx pgx.Tx, ps []Partition) error {
		drops = drops[:0]
		var total int64
		var kept []Partition
		for _, p := range ps {
			if p.Default {
				continue
			}
			if p.To != nil && !p.To.After(cutoff) {
				drops = append(drops, Drop{At: now, Kind: "raw", Reason: DropAge, Target: p.Name, Upto: *p.To, Rows: p.Rows, Bytes: p.Bytes})
				continue
			}
			total += p.Bytes
			kept = append(kept, p)
		}
		for _, p := range kept { // oldest first
			if maxBytes <= 0 || total <= maxBytes || p.To == nil || p.To.After(now) {
				break
			}
			drops = append(drops, Drop{At: now, Kind: "raw", Reason: DropSize, Target: p.Name, Upto: *p.To, Rows: p.Rows, Bytes: p.Bytes})
			total -= p.Bytes
		}
		for _, d := range drops {
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{d.Target}.Sanitize()); err != nil {
				return fmt.Errorf("drop %s: %w", d.Target, err)
			}
		}
		tag, err := tx.Exec(ctx, deleteDefaultBefore, cutoff)
		if err != nil {
			return fmt.Errorf("default partition: %w", err)
		}
		if n := tag.RowsAffected(); n > 0 {
			drops = append(drops, Drop{At: now, Kind: "raw", Reason: DropAge, Target: "readings_default", Upto: cutoff, Rows: n})
		}
		return recordDrops(ctx, tx, drops)
	})
	if err != nil {
		return nil, fmt.Errorf("store: drop raw: %w", err)
	}
	return drops, nil
}

// deleteRollupsBefore deletes one rollup table's buckets before $1, series
// by series through the primary key (sensors lists every series), so no
// index on bucket alone has to be kept up by every ingest upsert for a
// statement that runs once per maintenance round.
const deleteRollupsBefore = `DELETE FROM %s r USING sensors s
WHERE r.sensor_id = s.sensor_id AND r.metric = s.metric AND r.bucket < $1`

// DropRollups deletes the buckets of one rollup level (kind "1m" or "1h")
// that start before cutoff, and records the drop.
func (s *Store) DropRollups(ctx context.Context, now time.Time, kind string, cutoff time.Time) (Drop, error) {
	table := map[string]string{"1m": "readings_1m", "1h": "readings_1h"}[kind]
	if table == "" {
		return Drop{}, fmt.Errorf("store: drop rollups: unknown kind %q", kind)
	}
	d := Drop{At: now, Kind: kind, Reason: DropAge, Target: table, Upto: cutoff}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, fmt.Sprintf(deleteRollupsBefore, table), cutoff)
		if err != nil {
			return err
		}
		d.Rows = tag.RowsAffected()
		if d.Rows == 0 {
			return nil
		}
		return recordDrops(ctx, tx, []Drop{d})
	})
	if err != nil {
		return Drop{}, fmt.Errorf("store: drop rollups %s: %w", kind, err)
	}
	return d, nil
}

func recordDrops(ctx context.Context, tx pgx.Tx, drops []Drop) error {
	for _, d := range drops {
		if _, err := tx.Exec(ctx, insertDrop, d.At, d.Kind, d.Reason, d.Target, d.Upto, d.Rows, d.Bytes); err != nil {
			return fmt.Errorf("record drop: %w", err)
		}
	}
	return nil
}

// DataStats is the storage part of /api/stats.
type DataStats struct {
	RawBytes      int64           `json:"raw_bytes"`
	RawPartitions int             `json:"raw_partitions"`
	DefaultRows   int64           `json:"default_partition_rows"`
	OldestRaw     *time.Time      `json:"oldest_raw_partition_from,omitempty"`
	Rollup1mBytes int64           `json:"rollup_1m_bytes"`
	Rollup1hBytes int64           `json:"rollup_1h_bytes"`
	Dropped       []DroppedTotals `json:"dropped"`
	LastDrops     []Drop          `json:"last_drops"`
}

// DroppedTotals sums data_drops by kind and reason.
type DroppedTotals struct {
	Kind       string `json:"kind"`
	Reason     string `json:"reason"`
	Drops      int64  `json:"drops"`
	Rows       int64  `json:"rows"`
	Bytes      int64  `json:"bytes"`
	Partitions int64  `json:"partitions"`
}

// DataStats reports the size of raw readings and rollups and what
// retention dropped, from the catalog and data_drops; cheap enough for
// every /api/stats request.
func (s *Store) DataStats(ctx context.Context) (DataStats, error) {
	var st DataStats
	ps, err := partitions(ctx, s.pool)
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	for _, p := range ps {
		st.RawBytes += p.Bytes
		if p.Default {
			st.DefaultRows = p.Rows
			continue
		}
		st.RawPartitions++
		if st.OldestRaw == nil && p.To != nil {
			st.OldestRaw = p.From // nil for a legacy partition (unbounded below)
		}
	}
	err = s.pool.QueryRow(ctx, `SELECT pg_total_relation_size('readings_1m'), pg_total_relation_size('readings_1h')`).
		Scan(&st.Rollup1mBytes, &st.Rollup1hBytes)
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT kind, reason, count(*), sum(row_count)::bigint, sum(bytes)::bigint,
	count(*) FILTER (WHERE target LIKE 'readings\_p%' OR target = 'readings_legacy')
FROM data_drops GROUP BY kind, reason ORDER BY kind, reason`)
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	st.Dropped, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DroppedTotals, error) {
		var t DroppedTotals
		err := row.Scan(&t.Kind, &t.Reason, &t.Drops, &t.Rows, &t.Bytes, &t.Partitions)
		return t, err
	})
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT at, kind, reason, target, upto, row_count, bytes FROM data_drops ORDER BY id DESC LIMIT 10`)
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	st.LastDrops, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Drop, error) {
		var d Drop
		err := row.Scan(&d.At, &d.Kind, &d.Reason, &d.Target, &d.Upto, &d.Rows, &d.Bytes)
		return d, err
	})
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	if st.Dropped == nil {
		st.Dropped = []DroppedTotals{}
	}
	if st.LastDrops == nil {
		st.LastDrops = []Drop{}
	}
	return st, nil
}

// DataReport is DataStats for /api/stats, which takes it as any so that
// the web package does not depend on this one.
func (s *Store) DataReport(ctx context.Context) (any, error) { return s.DataStats(ctx) }
