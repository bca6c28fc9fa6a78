package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The partitioned tables of readings and their rollups (migrations 00007
// and 00013), each partitioned by range of its time column:
//
//   - readings by UTC day, readings_pYYYYMMDD;
//   - readings_1m by UTC month, readings_1m_pYYYYMM;
//   - readings_1h by UTC year, readings_1h_pYYYY;
//
// each with a default partition (TABLE_default) for rows outside every
// partition created, and, in databases that held data when they were
// upgraded, TABLE_legacy (the table as it was, for every time before the
// upgrade). Only the functions of this file and retention.go create or
// drop partitions, always under partitionsLock, so instances doing the
// same maintenance at the same moment take turns and the second finds
// nothing left to do: PostgreSQL decides, no instance is elected.
// PartitionSpan is the time range of one readings partition: a UTC day.
// Chosen by measurement (docs/storage.md, "Why one partition per day"): a
// day of readings at 1,000/s is 86 M rows, a few GB, small enough to drop
// as the unit of retention, while 30 days of retention keep ~35
// partitions, which the planner prunes in microseconds; hourly partitions
// (720 for 30 days) slowed planning of every insert and query.
const PartitionSpan = 24 * time.Hour

// partitioned describes one table partitioned by range of a time column
// into partitions of one calendar unit (UTC).
type partitioned struct {
	kind   string // raw, 1m or 1h: Drop.Kind
	table  string
	column string // the partition key
	unit   string // day, month or year: date_trunc's unit
	layout string // of the time in a partition's name
}

var (
	rawTable    = partitioned{"raw", "readings", "ts", "day", "20060102"}
	minuteTable = partitioned{"1m", "readings_1m", "bucket", "month", "200601"}
	hourTable   = partitioned{"1h", "readings_1h", "bucket", "year", "2006"}
)

// rollupTable returns the rollup table of kind 1m or 1h.
func rollupTable(kind string) (partitioned, error) {
	switch kind {
	case minuteTable.kind:
		return minuteTable, nil
	case hourTable.kind:
		return hourTable, nil
	}
	return partitioned{}, fmt.Errorf("unknown rollup kind %q", kind)
}

// start returns the start of the unit holding t.
func (p partitioned) start(t time.Time) time.Time {
	t = t.UTC()
	switch p.unit {
	case "year":
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(PartitionSpan)
}

// next returns the start of the unit after the one starting at t.
func (p partitioned) next(t time.Time) time.Time {
	switch p.unit {
	case "year":
		return t.AddDate(1, 0, 0)
	case "month":
		return t.AddDate(0, 1, 0)
	}
	return t.Add(PartitionSpan)
}

// partitionName names the partition of the unit starting at t.
func (p partitioned) partitionName(t time.Time) string {
	return p.table + "_p" + t.UTC().Format(p.layout)
}

func (p partitioned) defaultPartition() string { return p.table + "_default" }

// partitionsLock is the transaction-level advisory lock key of partition
// maintenance.
const partitionsLock = `SELECT pg_advisory_xact_lock(hashtext('watchroom.readings_partitions'))`

// maintenanceLockTimeout bounds how long creating or dropping a partition
// waits for its locks (DROP and ATTACH need ACCESS EXCLUSIVE on the parent,
// behind any long query): a maintenance round that cannot have them fails
// and the next one tries again, instead of stalling ingest queued behind it.
const maintenanceLockTimeout = `SET LOCAL lock_timeout = '5s'`

// listPartitions lists the partitions of table $1 with their bounds (NULL
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
WHERE i.inhparent = $1::regclass`

// Partition is one partition of readings or of a rollup table.
type Partition struct {
	Name    string     `json:"name"`
	Default bool       `json:"default,omitempty"`
	From    *time.Time `json:"from,omitempty"` // nil: unbounded (MINVALUE) or default
	To      *time.Time `json:"to,omitempty"`
	Bytes   int64      `json:"bytes"`
	Rows    int64      `json:"rows_estimate"` // pg_class.reltuples, as of the last ANALYZE
}

// overlaps reports whether p's range overlaps [lo, hi).
func (p Partition) overlaps(lo, hi time.Time) bool {
	if p.Default {
		return false
	}
	return (p.From == nil || p.From.Before(hi)) && (p.To == nil || p.To.After(lo))
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func partitions(ctx context.Context, q querier, table string) ([]Partition, error) {
	rows, err := q.Query(ctx, listPartitions, table)
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
	ps, err := partitions(ctx, s.pool, rawTable.table)
	if err != nil {
		return nil, fmt.Errorf("store: partitions: %w", err)
	}
	return ps, nil
}

// RollupPartitions lists the partitions of the rollup table of kind (1m or
// 1h), oldest first, the default partition last.
func (s *Store) RollupPartitions(ctx context.Context, kind string) ([]Partition, error) {
	t, err := rollupTable(kind)
	if err == nil {
		var ps []Partition
		if ps, err = partitions(ctx, s.pool, t.table); err == nil {
			return ps, nil
		}
	}
	return nil, fmt.Errorf("store: rollup partitions: %w", err)
}

// maintain runs fn in a transaction holding partitionsLock, with the
// partitions of t as they are once the lock is held.
func (s *Store) maintain(ctx context.Context, t partitioned, fn func(tx pgx.Tx, ps []Partition) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, partitionsLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, maintenanceLockTimeout); err != nil {
			return err
		}
		ps, err := partitions(ctx, tx, t.table)
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		return fn(tx, ps)
	})
}

// defaultUnits lists the units (days, months, years) of the rows of a
// default partition within [$1, $2), from its index on the partition key.
// The unit is cut in UTC, as partition bounds are.
const defaultUnits = `SELECT DISTINCT date_trunc('%[3]s', %[2]s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM %[1]s WHERE %[2]s >= $1 AND %[2]s < $2`

// moveFromDefault moves the default partition's rows of one unit into the
// (not yet attached) table of that unit: ATTACH refuses a range that rows
// of the default partition fall in. For readings, rollups are not
// touched: the readings were folded in when they were inserted. * keeps
// every column (the unit's table is made LIKE the parent, so in the same
// order).
const moveFromDefault = `WITH moved AS (
	DELETE FROM %[1]s WHERE %[2]s >= $1 AND %[2]s < $2 RETURNING *
) INSERT INTO %[3]s SELECT * FROM moved`

// EnsurePartitions creates the daily partitions of readings from the day
// of now through ahead days after it, and the days of readings waiting in
// the default partition from keepFrom on (late or imported readings
// within raw retention), moving those readings into them. Days already
// covered by a partition (a legacy one too) are left alone, so calling it
// again, from any instance, does nothing. It returns the names of the
// partitions it created.
func (s *Store) EnsurePartitions(ctx context.Context, now time.Time, ahead int, keepFrom time.Time) ([]string, error) {
	created, err := s.ensurePartitions(ctx, rawTable, now, ahead, keepFrom)
	if err != nil {
		return nil, fmt.Errorf("store: ensure partitions: %w", err)
	}
	return created, nil
}

// EnsureRollupPartitions does for the rollup table of kind (1m: monthly
// partitions, 1h: yearly) what EnsurePartitions does for readings: the
// partitions of now's unit and ahead units after it, and of the units of
// rows waiting in its default partition from keepFrom on.
func (s *Store) EnsureRollupPartitions(ctx context.Context, kind string, now time.Time, ahead int, keepFrom time.Time) ([]string, error) {
	t, err := rollupTable(kind)
	var created []string
	if err == nil {
		created, err = s.ensurePartitions(ctx, t, now, ahead, keepFrom)
	}
	if err != nil {
		return nil, fmt.Errorf("store: ensure rollup partitions: %w", err)
	}
	return created, nil
}

func (s *Store) ensurePartitions(ctx context.Context, t partitioned, now time.Time, ahead int, keepFrom time.Time) ([]string, error) {
	var created []string
	err := s.maintain(ctx, t, func(tx pgx.Tx, ps []Partition) error {
		created = created[:0]
		var units []time.Time
		u := t.start(now)
		for range ahead + 1 {
			units = append(units, u)
			u = t.next(u)
		}
		end := u
		def := pgx.Identifier{t.defaultPartition()}.Sanitize()
		rows, err := tx.Query(ctx, fmt.Sprintf(defaultUnits, def, t.column, t.unit), keepFrom, end)
		if err != nil {
			return fmt.Errorf("default partition units: %w", err)
		}
		late, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return fmt.Errorf("default partition units: %w", err)
		}
		units = append(units, late...)
		slices.SortFunc(units, func(a, b time.Time) int { return a.Compare(b) })
		units = slices.CompactFunc(units, func(a, b time.Time) bool { return a.Equal(b) })
	next:
		for _, lo := range units {
			hi := t.next(lo)
			for _, p := range ps {
				if p.overlaps(lo, hi) {
					continue next
				}
			}
			name := pgx.Identifier{t.partitionName(lo)}.Sanitize()
			var waiting bool
			q := fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE %s >= $1 AND %[2]s < $2)`, def, t.column)
			if err := tx.QueryRow(ctx, q, lo, hi).Scan(&waiting); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			parent := pgx.Identifier{t.table}.Sanitize()
			bounds := fmt.Sprintf("FOR VALUES FROM ('%s') TO ('%s')", lo.Format(time.RFC3339), hi.Format(time.RFC3339))
			if !waiting {
				if _, err := tx.Exec(ctx, "CREATE TABLE "+name+" PARTITION OF "+parent+" "+bounds); err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
			} else {
				// LIKE copies the columns with their collations; ATTACH
				// builds the primary key index from the parent's.
				if _, err := tx.Exec(ctx, "CREATE TABLE "+name+" (LIKE "+parent+" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"); err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(moveFromDefault, def, t.column, name), lo, hi); err != nil {
					return fmt.Errorf("move default rows into %s: %w", name, err)
				}
				if _, err := tx.Exec(ctx, "ALTER TABLE "+parent+" ATTACH PARTITION "+name+" "+bounds); err != nil {
					return fmt.Errorf("attach %s: %w", name, err)
				}
			}
			created = append(created, t.partitionName(lo))
			ps = append(ps, Partition{Name: t.partitionName(lo), From: &lo, To: &hi})
		}
		return nil
	})
	return created, err
}
