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
	Target string    `json:"target"` // a partition, or a default partition for row deletes
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

// deleteDefaultBefore removes the rows past retention that wait in a
// default partition (late readings older than every kept day, their
// buckets): row by row, as a default partition is meant to stay small.
const deleteDefaultBefore = `DELETE FROM %s WHERE %s < $1`

// advanceRawHorizon moves the raw horizon (migration 00014) forward: every
// raw reading removed is older than it.
const advanceRawHorizon = `UPDATE raw_horizon SET upto = greatest(upto, $1)`

// DropRaw enforces raw retention at now: every partition whose range ends
// at or before cutoff is dropped whole (DROP TABLE: instant, no dead rows),
// and readings before cutoff in the default partition are deleted. Then,
// when maxBytes > 0 and the partitions together are larger, the oldest are
// dropped until they fit, but never the partition holding now or a later
// one, which ingest writes into (reason size; the shortfall is for the
// caller to report). Each drop is recorded in data_drops and the raw
// horizon moved past it, in the same transaction, and returned.
//
// It holds the batch writers' lock (takeReadingSeq) while it drops, so a
// batch reads the horizon either before a drop (and commits before it) or
// after it: a repeat of a dropped reading is never checked against a
// horizon that is about to move (see InsertReadings).
func (s *Store) DropRaw(ctx context.Context, now, cutoff time.Time, maxBytes int64) ([]Drop, error) {
	var drops []Drop
	err := s.maintain(ctx, rawTable, func(tx pgx.Tx, ps []Partition) error {
		drops = drops[:0]
		if _, err := tx.Exec(ctx, lockReadingWriters); err != nil {
			return fmt.Errorf("lock writers: %w", err)
		}
		var total int64
		var kept []Partition
		for _, p := range ps {
			if p.Default {
				continue
			}
			if p.To != nil && !p.To.After(cutoff) {
				drops = append(drops, Drop{At: now, Kind: rawTable.kind, Reason: DropAge, Target: p.Name, Upto: *p.To, Rows: p.Rows, Bytes: p.Bytes})
				continue
			}
			total += p.Bytes
			kept = append(kept, p)
		}
		for _, p := range kept { // oldest first
			if maxBytes <= 0 || total <= maxBytes || p.To == nil || p.To.After(now) {
				break
			}
			drops = append(drops, Drop{At: now, Kind: rawTable.kind, Reason: DropSize, Target: p.Name, Upto: *p.To, Rows: p.Rows, Bytes: p.Bytes})
			total -= p.Bytes
		}
		var err error
		if drops, err = dropPartitions(ctx, tx, rawTable, drops, now, cutoff); err != nil {
			return err
		}
		if len(drops) == 0 {
			return nil
		}
		upto := drops[0].Upto
		for _, d := range drops {
			upto = later(upto, d.Upto)
		}
		if _, err := tx.Exec(ctx, advanceRawHorizon, upto); err != nil {
			return fmt.Errorf("raw horizon: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: drop raw: %w", err)
	}
	return drops, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// dropPartitions drops the partitions of t named by drops, deletes the
// rows of t's default partition before cutoff (adding that to drops when
// there were some) and records every drop.
func dropPartitions(ctx context.Context, tx pgx.Tx, t partitioned, drops []Drop, now, cutoff time.Time) ([]Drop, error) {
	for _, d := range drops {
		if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{d.Target}.Sanitize()); err != nil {
			return nil, fmt.Errorf("drop %s: %w", d.Target, err)
		}
	}
	def := t.defaultPartition()
	tag, err := tx.Exec(ctx, fmt.Sprintf(deleteDefaultBefore, pgx.Identifier{def}.Sanitize(), t.column), cutoff)
	if err != nil {
		return nil, fmt.Errorf("default partition: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		drops = append(drops, Drop{At: now, Kind: t.kind, Reason: DropAge, Target: def, Upto: cutoff, Rows: n})
	}
	return drops, recordDrops(ctx, tx, drops)
}

// DropRollups enforces the retention of one rollup level (kind "1m" or
// "1h") at now, as DropRaw does for readings: every partition whose range
// ends at or before cutoff is dropped whole, and buckets before cutoff in
// the default partition are deleted. The drops are recorded and returned.
func (s *Store) DropRollups(ctx context.Context, now time.Time, kind string, cutoff time.Time) ([]Drop, error) {
	t, err := rollupTable(kind)
	if err != nil {
		return nil, fmt.Errorf("store: drop rollups: %w", err)
	}
	var drops []Drop
	err = s.maintain(ctx, t, func(tx pgx.Tx, ps []Partition) error {
		drops = drops[:0]
		for _, p := range ps {
			if !p.Default && p.To != nil && !p.To.After(cutoff) {
				drops = append(drops, Drop{At: now, Kind: t.kind, Reason: DropAge, Target: p.Name, Upto: *p.To, Rows: p.Rows, Bytes: p.Bytes})
			}
		}
		var err error
		drops, err = dropPartitions(ctx, tx, t, drops, now, cutoff)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: drop rollups %s: %w", kind, err)
	}
	return drops, nil
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
	RawHorizon    time.Time       `json:"raw_horizon"` // every raw reading removed is older (see InsertReadings)
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
	ps, err := partitions(ctx, s.pool, rawTable.table)
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
	// A partitioned table has no storage of its own: sum its partitions.
	err = s.pool.QueryRow(ctx, `SELECT
	(SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('readings_1m')),
	(SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('readings_1h')),
	(SELECT upto FROM raw_horizon)`).
		Scan(&st.Rollup1mBytes, &st.Rollup1hBytes, &st.RawHorizon)
	if err != nil {
		return st, fmt.Errorf("store: data stats: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT kind, reason, count(*), sum(row_count)::bigint, sum(bytes)::bigint,
	count(*) FILTER (WHERE target ~ '_(p[0-9]+|legacy)$')
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
