package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The readings partitions (migration 00007): one per UTC day, named
// readings_pYYYYMMDD, plus readings_default for readings outside every day
// created, and readings_legacy (before the upgrade) in databases that held
// readings when they were upgraded. Only the functions of this file create
// or drop partitions, always under partitionsLock, so instances doing the
// same maintenance at the same moment take turns and the second finds
// nothing left to do: PostgreSQL decides, no instance is elected.

// PartitionSpan is the time range of one readings partition: a UTC day.
// Chosen by measurement (docs/data.md, "Partitions"): a day of readings
// at 1,000/s is 86 M rows, a few GB, small enough to drop as the unit of
// retention, while 30 days of retention keep ~35 partitions, which the
// planner prunes in microseconds; hourly partitions (720 for 30 days)
// slowed planning of every insert and query.
const PartitionSpan = 24 * time.Hour

// partitionsLock is the transaction-level advisory lock key of partition
// maintenance.
const partitionsLock = `SELECT pg_advisory_xact_lock(hashtext('watchroom.readings_partitions'))`

// maintenanceLockTimeout bounds how long creating or dropping a partition
// waits for its locks (DROP and ATTACH need ACCESS EXCLUSIVE on readings,
// behind any long query): a maintenance round that cannot have them fails
// and the next one tries again, instead of stalling ingest queued behind it.
const maintenanceLockTimeout = `SET LOCAL lock_timeout = '5s'`

// listPartitions lists the partitions of readings with their bounds (NULL
// for MINVALUE / MAXVALUE and for the default partition) and size. The
// bounds are cut from pg_get_expr's text and cast back in the same
// session, so DateStyle and TimeZone cannot make them ambiguous.
const listPartitions = `SELECT c.relname,
	pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
	(regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
	(regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz,
	pg_total_relation_size(c.oid),
	greatest(c.reltuples, 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'readings'::regclass`

// Partition is one partition of readings.
type Partition struct {
	Name    string     `json:"name"`
	Default bool       `json:"default,omitempty"`
	From    *time.Time `json:"from,omitempty"` // nil: unbounded (MINVALUE) or default
	To      *time.Time `json:"to,omitempty"`
	Bytes   int64      `json:"bytes"`
	Rows    int64      `json:"rows_estimate"` // pg_class.reltuples, as of the last ANALYZE
}

// covers reports whether p's range overlaps [lo, hi).
func (p Partition) overlaps(lo, hi time.Time) bool {
	if p.Default {
		return false
	}
	return (p.From == nil || p.From.Before(hi)) && (p.To == nil || p.To.After(lo))
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func partitions(ctx context.Context, q querier) ([]Partition, error) {
	rows, err := q.Query(ctx, listPartitions)
	if err != nil {
		return nil, err
	}
	ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := row.Scan(&p.Name, &p.Default, &p.From, &p.To, &p.Bytes, &p.Rows)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	// Oldest first; unbounded below first, the default partition last.
	slices.SortFunc(ps, func(a, b Partition) int {
		switch {
		case a.Default != b.Default:
			if a.Default {
				return 1
			}
			return -1
		case a.To == nil || b.To == nil:
			return 0
		}
		return a.To.Compare(*b.To)
	})
	return ps, nil
}

// Partitions lists the partitions of readings, oldest first, the default
// partition last.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	ps, err := partitions(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("store: partitions: %w", err)
	}
	return ps, nil
}

// maintain runs fn in a transaction holding partitionsLock, with the
// partitions as they are once the lock is held.
func (s *Store) maintain(ctx context.Context, fn func(tx pgx.Tx, ps []Partition) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, partitionsLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, maintenanceLockTimeout); err != nil {
			return err
		}
		ps, err := partitions(ctx, tx)
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		return fn(tx, ps)
	})
}

// partitionName names the partition of the UTC day starting at day.
func partitionName(day time.Time) string { return "readings_p" + day.UTC().Format("20060102") }

// defaultDays lists the UTC days of the readings in the default partition
// within [lo, hi), from its ts index.
const defaultDays = `SELECT DISTINCT date_bin('1 day', ts, 'epoch'::timestamptz) FROM readings_default
WHERE ts >= $1 AND ts < $2`

// moveFromDefault moves the default partition's readings of one day into
// the (not yet attached) table of that day: ATTACH refuses a range that
// rows of the default partition fall in. Rollups are not touched: the
// readings were folded in when they were inserted. * keeps every column
// (the day's table is made LIKE readings, so in the same order).
const moveFromDefault = `WITH moved AS (
	DELETE FROM readings_default WHERE ts >= $1 AND ts < $2 RETURNING *
) INSERT INTO %s SELECT * FROM moved`

// EnsurePartitions creates the daily partitions of readings from the day
// of now through ahead days after it, and the days of readings waiting in
// the default partition from keepFrom on (late or imported readings
// within raw retention), moving those readings into them. Days already
// covered by a partition (a legacy one too) are left alone, so calling it
// again, from any instance, does nothing. It returns the names of the
// partitions it created.
func (s *Store) EnsurePartitions(ctx context.Context, now time.Time, ahead int, keepFrom time.Time) ([]string, error) {
	var created []string
	err := s.maintain(ctx, func(tx pgx.Tx, ps []Partition) error {
		created = created[:0]
		today := now.UTC().Truncate(PartitionSpan)
		end := today.Add(time.Duration(ahead+1) * PartitionSpan)
		var days []time.Time
		for d := today; d.Before(end); d = d.Add(PartitionSpan) {
			days = append(days, d)
		}
		rows, err := tx.Query(ctx, defaultDays, keepFrom, end)
		if err != nil {
			return fmt.Errorf("default days: %w", err)
		}
		late, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return fmt.Errorf("default days: %w", err)
		}
		days = append(days, late...)
		slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
		days = slices.CompactFunc(days, func(a, b time.Time) bool { return a.Equal(b) })
	next:
		for _, d := range days {
			hi := d.Add(PartitionSpan)
			for _, p := range ps {
				if p.overlaps(d, hi) {
					continue next
				}
			}
			name := pgx.Identifier{partitionName(d)}.Sanitize()
			var waiting bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM readings_default WHERE ts >= $1 AND ts < $2)`, d, hi).Scan(&waiting); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			bounds := fmt.Sprintf("FOR VALUES FROM ('%s') TO ('%s')", d.Format(time.RFC3339), hi.Format(time.RFC3339))
			if !waiting {
				if _, err := tx.Exec(ctx, "CREATE TABLE "+name+" PARTITION OF readings "+bounds); err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
			} else {
				// LIKE copies the columns with their collations; ATTACH
				// builds the primary key index from the parent's.
				if _, err := tx.Exec(ctx, "CREATE TABLE "+name+" (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"); err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(moveFromDefault, name), d, hi); err != nil {
					return fmt.Errorf("move default rows into %s: %w", name, err)
				}
				if _, err := tx.Exec(ctx, "ALTER TABLE readings ATTACH PARTITION "+name+" "+bounds); err != nil {
					return fmt.Errorf("attach %s: %w", name, err)
				}
			}
			created = append(created, partitionName(d))
			ps = append(ps, Partition{Name: partitionName(d), From: &d, To: &hi})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: ensure partitions: %w", err)
	}
	return created, nil
}
