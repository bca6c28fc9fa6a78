package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/migrations"
)

// rollupMismatches compares each rollup table with the rollups computed
// afresh from the stored readings and returns the differing rows; only
// meaningful while no raw data was dropped.
func rollupMismatches(t *testing.T, ctx context.Context, q querier) []string {
	t.Helper()
	var out []string
	for _, c := range []struct{ table, width string }{{"readings_1m", "1 minute"}, {"readings_1h", "1 hour"}} {
		rows, err := q.Query(ctx, fmt.Sprintf(`WITH want AS (
	SELECT sensor_id, metric, date_bin('%s', ts, 'epoch'::timestamptz) AS bucket,
		count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
		min(ts) AS first_ts, (array_agg(value ORDER BY ts))[1] AS first_value,
		max(ts) AS last_ts, (array_agg(value ORDER BY ts DESC))[1] AS last_value
	FROM readings GROUP BY 1, 2, 3
)
SELECT sensor_id || '/' || bucket::text || ' want ' || coalesce(w::text, '-') || ' got ' || coalesce(r::text, '-')
FROM want w FULL JOIN %s r USING (sensor_id, metric, bucket)
WHERE (w.count, w.sum, w.min, w.max, w.first_ts, w.first_value, w.last_ts, w.last_value)
	IS DISTINCT FROM (r.count, r.sum, r.min, r.max, r.first_ts, r.first_value, r.last_ts, r.last_value)`, c.width, c.table))
		if err != nil {
			t.Fatalf("compare %s: %v", c.table, err)
		}
		diff, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("compare %s: %v", c.table, err)
		}
		for _, d := range diff {
			out = append(out, c.table+": "+d)
		}
	}
	return out
}

func rollup(t *testing.T, ctx context.Context, s *Store, table, sensor string, bucket time.Time) (count int64, sum, first, last float64) {
	t.Helper()
	err := s.Pool().QueryRow(ctx, `SELECT count, sum, first_value, last_value FROM `+table+`
WHERE sensor_id = $1 AND metric = 'temp' AND bucket = $2`, sensor, bucket).Scan(&count, &sum, &first, &last)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatalf("read %s: %v", table, err)
	}
	return count, sum, first, last
}

func TestRollupsFollowInsertedRows(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	receipt := func(r model.Reading) model.Reading { r.Receipt = true; return r }
	tests := []struct {
		name    string
		batches [][]model.Reading
		// the 1-minute bucket at t0+10h and the hour at t0+10h
		wantMin, wantHour         int64
		wantMinSum                float64
		wantMinFirst, wantMinLast float64
	}{
		{
			name: "in order",
			batches: [][]model.Reading{{
				rd("s", "temp", "C", 36000, 1), rd("s", "temp", "C", 36001, 2), rd("s", "temp", "C", 36060, 5),
			}},
			wantMin: 2, wantHour: 3, wantMinSum: 3, wantMinFirst: 1, wantMinLast: 2,
		},
		{
			name: "redelivered batch counts once",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 36000, 1), rd("s", "temp", "C", 36001, 2)},
				{rd("s", "temp", "C", 36000, 1), rd("s", "temp", "C", 36001, 2)},
			},
			wantMin: 2, wantHour: 2, wantMinSum: 3, wantMinFirst: 1, wantMinLast: 2,
		},
		{
			name: "duplicate within a batch and a conflict",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 36000, 1), rd("s", "temp", "C", 36000, 1), rd("s", "temp", "C", 36002, 3)},
				{rd("s", "temp", "C", 36002, 99), rd("s", "temp", "C", 36003, 4)},
			},
			wantMin: 3, wantHour: 3, wantMinSum: 8, wantMinFirst: 1, wantMinLast: 4,
		},
		{
			name: "hours late, before and after what the bucket holds",
			batches: [][]model.Reading{
				{rd("s", "temp", "C", 36030, 5), rd("s", "temp", "C", 36000+5*3600, 0)},
				{rd("s", "temp", "C", 36000+7*3600, 0)},
				// 7 hours late: earlier and later than the stored ones
				{rd("s", "temp", "C", 36059, 9), rd("s", "temp", "C", 36001, 2)},
				// and again (redelivered late)
				{rd("s", "temp", "C", 36059, 9)},
			},
			wantMin: 3, wantHour: 3, wantMinSum: 16, wantMinFirst: 2, wantMinLast: 9,
		},
		{
			name: "re-stamped receipt readings count at their new stamp",
			batches: [][]model.Reading{
				{receipt(rd("s", "temp", "C", 36000, 1)), receipt(rd("s", "temp", "C", 36000, 2))},
			},
			wantMin: 2, wantHour: 2, wantMinSum: 3, wantMinFirst: 1, wantMinLast: 2,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sensor := fmt.Sprintf("roll%d", i)
			for _, b := range tt.batches {
				for j := range b {
					b[j].SensorID = sensor
				}
				if _, err := s.InsertReadings(ctx, b); err != nil {
					t.Fatalf("InsertReadings: %v", err)
				}
			}
			n, sum, first, last := rollup(t, ctx, s, "readings_1m", sensor, at(36000))
			if n != tt.wantMin || sum != tt.wantMinSum || first != tt.wantMinFirst || last != tt.wantMinLast {
				t.Errorf("1m bucket: count %d sum %v first %v last %v, want %d %v %v %v",
					n, sum, first, last, tt.wantMin, tt.wantMinSum, tt.wantMinFirst, tt.wantMinLast)
			}
			if n, _, _, _ := rollup(t, ctx, s, "readings_1h", sensor, at(36000)); n != tt.wantHour {
				t.Errorf("1h bucket: count %d, want %d", n, tt.wantHour)
			}
		})
	}
	if d := rollupMismatches(t, ctx, s.Pool()); len(d) > 0 {
		t.Errorf("rollups differ from the readings:\n%v", d)
	}
}

func TestReadingBucketsFromRollupsAfterRetention(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	now := t0.Add(40 * 24 * time.Hour)
	if _, err := s.EnsurePartitions(ctx, t0, 3, t0); err != nil {
		t.Fatalf("EnsurePartitions: %v", err)
	}
	// Every 7 s for 30 h from t0+1h.
	var rs []model.Reading
	for sec := 3600; sec < 3600+30*3600; sec += 7 {
		rs = append(rs, rd("b", "temp", "C", sec, float64(sec%100)))
	}
	if _, err := s.InsertReadings(ctx, rs); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	// Odd bounds: partial minutes and hours at both ends.
	from, to := at(5000), at(3600+29*3600+123)
	rawOnly := func(bucket time.Duration) []model.Bucket {
		var out []model.Bucket
		rows, err := s.Pool().Query(ctx, `SELECT date_bin($3, ts, 'epoch'::timestamptz) b, min(value), avg(value), max(value), count(*)
FROM readings WHERE sensor_id = 'b' AND metric = 'temp' AND ts >= $1 AND ts <= $2 GROUP BY b ORDER BY b`, from, to, bucket)
		if err != nil {
			t.Fatalf("raw buckets: %v", err)
		}
		var b model.Bucket
		_, err = pgx.ForEachRow(rows, []any{&b.TS, &b.Min, &b.Avg, &b.Max, &b.Count}, func() error { out = append(out, b); return nil })
		if err != nil {
			t.Fatalf("raw buckets: %v", err)
		}
		return out
	}
	widths := []time.Duration{30 * time.Second, 5 * time.Minute, time.Hour, 6 * time.Hour}
	want := map[time.Duration][]model.Bucket{}
	for _, w := range widths {
		want[w] = rawOnly(w)
		got, err := s.ReadingBuckets(ctx, "b", "temp", from, to, w, 5000)
		if err != nil {
			t.Fatalf("ReadingBuckets(%s): %v", w, err)
		}
		if !bucketsClose(got, want[w]) {
			t.Errorf("bucket %s: rollups and raw differ:\n got %v\nwant %v", w, head(got), head(want[w]))
		}
	}
	drops, err := s.DropRaw(ctx, now, now.Add(-30*24*time.Hour), 0)
	if err != nil {
		t.Fatalf("DropRaw: %v", err)
	}
	if len(drops) == 0 {
		t.Fatalf("DropRaw dropped nothing")
	}
	if n := countReadings(t, ctx, s, "b"); n != 0 {
		t.Fatalf("%d readings left after retention", n)
	}
	// Whole minutes: the partial minutes at the ends of a range are read
	// from raw readings (bucketPlan), gone now.
	got, err := s.ReadingBuckets(ctx, "b", "temp", at(3600), at(3600+30*3600).Add(-time.Microsecond), time.Hour, 5000)
	if err != nil {
		t.Fatalf("ReadingBuckets after retention: %v", err)
	}
	var total int64
	for _, b := range got {
		total += b.Count
	}
	if int(total) != len(rs) || len(got) != 30 {
		t.Errorf("after raw retention: %d hourly buckets holding %d readings, want 30 holding %d", len(got), total, len(rs))
	}
}

func bucketsClose(a, b []model.Bucket) bool {
	return slices.EqualFunc(a, b, func(x, y model.Bucket) bool {
		d := x.Avg - y.Avg
		return x.TS.Equal(y.TS) && x.Min == y.Min && x.Max == y.Max && x.Count == y.Count && d < 1e-9 && d > -1e-9
	})
}

func head(bs []model.Bucket) []model.Bucket { return bs[:min(len(bs), 3)] }

func TestPartitionMaintenance(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	// Readings before any partition exists go to the default partition:
	// one 2 days before t0 (outside the kept window later), one on day 1.
	if _, err := s.InsertReadings(ctx, []model.Reading{rd("p", "temp", "C", -2*86400, 1), rd("p", "temp", "C", 86400+5, 2)}); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	// Two instances at once: PostgreSQL serialises them, the work is done once.
	errs := make(chan error, 2)
	results := make(chan []string, 2)
	for range 2 {
		go func() {
			c, err := s.EnsurePartitions(ctx, t0, 2, day(-1))
			results <- c
			errs <- err
		}()
	}
	var created []string
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("EnsurePartitions: %v", err)
		}
		created = append(created, <-results...)
	}
	slices.Sort(created)
	if want := []string{"readings_p20260101", "readings_p20260102", "readings_p20260103"}; !slices.Equal(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
	var inDefault, inDay1 int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM readings_default), (SELECT count(*) FROM readings_p20260102)`).Scan(&inDefault, &inDay1); err != nil {
		t.Fatalf("count: %v", err)
	}
	if inDefault != 1 || inDay1 != 1 {
		t.Errorf("default partition holds %d, day 1 holds %d; want 1 and 1 (the day-1 reading moved)", inDefault, inDay1)
	}
	if again, err := s.EnsurePartitions(ctx, t0, 2, day(-1)); err != nil || len(again) != 0 {
		t.Errorf("EnsurePartitions again: created %v, err %v; want nothing", again, err)
	}
	// Day 5: retention 3 days drops days 0 and 1 (they end at or before day 2), and the default partition's old reading.
	drops, err := s.DropRaw(ctx, day(5), day(2), 0)
	if err != nil {
		t.Fatalf("DropRaw: %v", err)
	}
	var targets []string
	for _, d := range drops {
		targets = append(targets, d.Target+"/"+d.Reason)
	}
	if want := []string{"readings_p20260101/age", "readings_p20260102/age", "readings_default/age"}; !slices.Equal(targets, want) {
		t.Errorf("dropped %v, want %v", targets, want)
	}
	// Size budget: 1 byte. Day 2 ended before now and goes; the partitions
	// of now and later stay whatever the budget.
	if _, err := s.EnsurePartitions(ctx, day(3), 1, day(2)); err != nil {
		t.Fatalf("EnsurePartitions: %v", err)
	}
	drops, err = s.DropRaw(ctx, day(3).Add(time.Hour), day(0), 1)
	if err != nil {
		t.Fatalf("DropRaw by size: %v", err)
	}
	if len(drops) != 1 || drops[0].Target != "readings_p20260103" || drops[0].Reason != DropSize {
		t.Errorf("size drops %+v, want readings_p20260103 only", drops)
	}
	st, err := s.DataStats(ctx)
	if err != nil {
		t.Fatalf("DataStats: %v", err)
	}
	if st.RawPartitions != 2 || len(st.LastDrops) != 4 || len(st.Dropped) != 2 {
		t.Errorf("DataStats: %d partitions, %d last drops, totals %+v; want 2, 4, age and size", st.RawPartitions, len(st.LastDrops), st.Dropped)
	}
	// Rollups survive raw retention. No rollup partition was created: the
	// buckets wait in the default partition, whose rows past retention
	// are deleted.
	ds, err := s.DropRollups(ctx, day(5), "1m", day(0))
	if err != nil || len(ds) != 1 || ds[0].Target != "readings_1m_default" || ds[0].Rows != 1 {
		t.Errorf("DropRollups: %+v, %v; want the one bucket before day 0, from readings_1m_default", ds, err)
	}
}

func TestLifecycleRound(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	now := t0
	l := NewLifecycle(s, LifecycleConfig{RetentionRaw: 48 * time.Hour, Retention1m: 24 * time.Hour, Retention1h: 0, AheadDays: 1},
		func() time.Time { return now }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Round(ctx)
	if _, err := s.InsertReadings(ctx, []model.Reading{rd("l", "temp", "C", 60, 1)}); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	// 40 days on: January's 1-minute rollups are past the retention of
	// 1 day as a whole month (their partition ends on February 1).
	now = t0.Add(40 * 24 * time.Hour)
	l.Round(ctx)
	names := func(ps []Partition, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatalf("partitions: %v", err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	for _, c := range []struct {
		got, want []string
	}{
		{names(s.Partitions(ctx)), []string{"readings_p20260210", "readings_p20260211", "readings_default"}},
		{names(s.RollupPartitions(ctx, "1m")), []string{"readings_1m_p202602", "readings_1m_p202603", "readings_1m_default"}},
		{names(s.RollupPartitions(ctx, "1h")), []string{"readings_1h_p2026", "readings_1h_p2027", "readings_1h_default"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("partitions %v, want %v", c.got, c.want)
		}
	}
	var m, h int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM readings_1m), (SELECT count(*) FROM readings_1h)`).Scan(&m, &h); err != nil {
		t.Fatalf("count rollups: %v", err)
	}
	if m != 0 || h != 1 {
		t.Errorf("rollups: %d minutes, %d hours; want 0 (past 1m retention) and 1 (kept forever)", m, h)
	}
	st, err := s.DataStats(ctx)
	if err != nil {
		t.Fatalf("DataStats: %v", err)
	}
	var kinds []string
	for _, d := range st.Dropped {
		kinds = append(kinds, fmt.Sprintf("%s/%s:%d partitions", d.Kind, d.Reason, d.Partitions))
	}
	if want := []string{"1m/age:1 partitions", "raw/age:2 partitions"}; !slices.Equal(kinds, want) {
		t.Errorf("drops %v, want %v", kinds, want)
	}
	if want := t0.Add(2 * 24 * time.Hour); !st.RawHorizon.Equal(want) {
		t.Errorf("raw horizon %v, want %v (the end of the newest dropped day)", st.RawHorizon, want)
	}
}

// migratedTo returns a new database migrated up to version, with a
// connection to it (closed by the test's cleanup) and the goose provider.
func migratedTo(t *testing.T, ctx context.Context, version int64) (string, *sql.DB, *goose.Provider) {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	connCfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	db := stdlib.OpenDB(*connCfg)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		t.Fatalf("UpTo(%d): %v", version, err)
	}
	return dbURL, db, p
}

// seedReadings inserts n readings of metric temp into the readings table
// of a database not yet migrated past 00006: sensors m0 … m(sensors-1) in
// turn, step apart, the newest now (to the second), and one reading of m0
// a year ahead.
func seedReadings(t *testing.T, ctx context.Context, db *sql.DB, n, sensors int, step string) {
	t.Helper()
	_, err := db.ExecContext(ctx, `INSERT INTO readings (sensor_id, metric, ts, value)
SELECT 'm' || (i % $2), 'temp', date_trunc('second', now()) - i * $3::interval, i FROM generate_series(0, $1 - 1) i
UNION ALL SELECT 'm0', 'temp', now() + interval '1 year', -1`, n, sensors, step)
	if err != nil {
		t.Fatalf("seed readings: %v", err)
	}
}

// TestMigrateConvertsReadings upgrades a database holding readings (as of
// migration 00006) and compares them before and after.
func TestMigrateConvertsReadings(t *testing.T) {
	ctx := testCtx(t)
	dbURL, db, _ := migratedTo(t, ctx, 6)
	// 20,000 readings over 3 days ending now, and one a year ahead (a bad clock).
	seedReadings(t, ctx, db, 20000, 10, "13 seconds")
	const digest = `SELECT count(*), md5(string_agg(sensor_id || metric || ts::text || value::text, ',' ORDER BY sensor_id, metric, ts)) FROM readings`
	var n0, n1 int
	var d0, d1 string
	if err := db.QueryRowContext(ctx, digest).Scan(&n0, &d0); err != nil {
		t.Fatalf("digest before: %v", err)
	}
	if err := Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := db.QueryRowContext(ctx, digest).Scan(&n1, &d1); err != nil {
		t.Fatalf("digest after: %v", err)
	}
	if n0 != n1 || d0 != d1 {
		t.Errorf("readings changed by the upgrade: %d rows (%s) before, %d (%s) after", n0, d0, n1, d1)
	}
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ps, err := s.Partitions(ctx)
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	if len(ps) != 2 || ps[0].Name != "readings_legacy" || ps[0].From != nil || !ps[1].Default {
		t.Errorf("partitions after upgrade: %+v; want readings_legacy and readings_default", ps)
	}
	var future int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM readings_default`).Scan(&future); err != nil || future != 1 {
		t.Errorf("default partition holds %d readings (%v), want the one from the future", future, err)
	}
	if d := rollupMismatches(t, ctx, s.Pool()); len(d) > 0 {
		t.Errorf("backfilled rollups differ from the readings: %v", d[:min(len(d), 3)])
	}
	// Ingest still works, and today's partition is the legacy one's.
	if created, err := s.EnsurePartitions(ctx, time.Now(), 2, time.Now().Add(-24*time.Hour)); err != nil || len(created) != 2 {
		t.Errorf("EnsurePartitions after upgrade: %v, %v; want tomorrow and the day after", created, err)
	}
}

// TestRepeatsPastRawRetention drops a raw partition, then redelivers a
// reading of it: the rollups must not count it twice. Readings older than
// the raw horizon are refused where their minute or hour lost raw rows,
// and accepted where the rollups can still tell a repeat (history into an
// empty hour).
func TestRepeatsPastRawRetention(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	if _, err := s.EnsurePartitions(ctx, t0, 2, t0); err != nil {
		t.Fatalf("EnsurePartitions: %v", err)
	}
	// Day 0, 10:00: three readings in one minute.
	first := []model.Reading{rd("r", "temp", "C", 36000, 1), rd("r", "temp", "C", 36010, 2), rd("r", "temp", "C", 36020, 3)}
	if _, err := s.InsertReadings(ctx, first); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	insert := func(rs ...model.Reading) model.InsertResult {
		t.Helper()
		res, err := s.InsertReadings(ctx, rs)
		if err != nil {
			t.Fatalf("InsertReadings: %v", err)
		}
		return res
	}
	wantCounts := func(when string, sensor string, sec int, minute, hour int64) {
		t.Helper()
		m, _, _, _ := rollup(t, ctx, s, "readings_1m", sensor, at(sec).Truncate(time.Minute))
		h, _, _, _ := rollup(t, ctx, s, "readings_1h", sensor, at(sec).Truncate(time.Hour))
		if m != minute || h != hour {
			t.Errorf("%s: minute counts %d, hour %d; want %d and %d", when, m, h, minute, hour)
		}
	}

	// Day 3: 2 days of retention drop day 0 (it ends at day 1).
	drops, err := s.DropRaw(ctx, day(3), day(1), 0)
	if err != nil || len(drops) != 1 || drops[0].Target != "readings_p20260101" {
		t.Fatalf("DropRaw: %+v, %v; want day 0 dropped", drops, err)
	}
	wantCounts("after the drop", "r", 36000, 3, 3)

	// The redelivery of a dropped reading, a new one in the same minute,
	// and one in another minute of the same hour: all refused (the hour
	// counts readings that are gone), the batch's current reading stored.
	res := insert(first[1], rd("r", "temp", "C", 36030, 4), rd("r", "temp", "C", 36000+600, 5), rd("r", "temp", "C", 86400*2+5, 6))
	if len(res.PastRetention) != 3 || len(res.Fresh) != 1 || !res.RawHorizon.Equal(day(1)) {
		t.Errorf("redelivery: %d past retention, %d fresh, horizon %v; want 3, 1 (the day-2 reading), %v",
			len(res.PastRetention), len(res.Fresh), res.RawHorizon, day(1))
	}
	wantCounts("after the redelivery", "r", 36000, 3, 3)
	if n := countReadings(t, ctx, s, "r"); n != 1 {
		t.Errorf("%d raw readings of r, want 1 (day 2)", n)
	}

	// The slow path of InsertReadings (a duplicate in the batch) with a
	// refused reading in it.
	res = insert(first[0], rd("r", "temp", "C", 86400*2+5, 6), rd("r", "temp", "C", 86400*2+6, 7))
	if len(res.PastRetention) != 1 || len(res.Fresh) != 1 || res.Duplicates != 1 {
		t.Errorf("mixed batch: %+v; want 1 past retention, 1 fresh, 1 duplicate", res)
	}
	wantCounts("after the mixed batch", "r", 36000, 3, 3)

	// History older than the horizon into an hour nobody reported in:
	// stored (in the default partition) and counted once, a repeat is a
	// duplicate while its raw row waits there...
	history := []model.Reading{rd("h", "temp", "C", 7200, 1), rd("h", "temp", "C", 7260, 2)}
	if res := insert(history...); len(res.Fresh) != 2 || len(res.PastRetention) != 0 {
		t.Errorf("history: %+v; want both stored", res)
	}
	if res := insert(history...); res.Duplicates != 2 {
		t.Errorf("history again: %+v; want 2 duplicates", res)
	}
	// ... and refused once retention has removed it.
	drops, err = s.DropRaw(ctx, day(4), day(2), 0)
	if err != nil {
		t.Fatalf("DropRaw: %v", err)
	}
	if res := insert(history...); len(res.PastRetention) != 2 || len(res.Fresh) != 0 {
		t.Errorf("history after its rows were removed (%+v): %+v; want both refused", drops, res)
	}
	wantCounts("history", "h", 7200, 1, 2)
}

// TestMigrateConvertsRollups upgrades a database holding rollups (as of
// migration 00010, before they were partitioned) and compares them before
// and after; then ingest and maintenance go on in the new layout.
func TestMigrateConvertsRollups(t *testing.T) {
	ctx := testCtx(t)
	dbURL, db, p := migratedTo(t, ctx, 6)
	// Readings over 70 days ending now, and one a year ahead (a bad clock);
	// migration 00007 backfills the rollups from them.
	seedReadings(t, ctx, db, 10080, 7, "10 minutes")
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatalf("UpTo(10): %v", err)
	}
	digest := func(table string) string {
		t.Helper()
		var n int
		var d string
		err := db.QueryRowContext(ctx, `SELECT count(*), md5(string_agg(concat_ws('|', sensor_id, metric, bucket, count, sum, min, max,
	first_ts, first_value, last_ts, last_value), ',' ORDER BY sensor_id, metric, bucket)) FROM `+table).Scan(&n, &d)
		if err != nil {
			t.Fatalf("digest %s: %v", table, err)
		}
		return fmt.Sprintf("%d rows, %s", n, d)
	}
	before := map[string]string{"readings_1m": digest("readings_1m"), "readings_1h": digest("readings_1h")}
	if err := Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	for table, d := range before {
		if after := digest(table); after != d {
			t.Errorf("%s changed by the upgrade: %s before, %s after", table, d, after)
		}
	}
	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, kind := range []string{"1m", "1h"} {
		ps, err := s.RollupPartitions(ctx, kind)
		if err != nil {
			t.Fatalf("RollupPartitions: %v", err)
		}
		if len(ps) != 2 || ps[0].Name != "readings_"+kind+"_legacy" || ps[0].From != nil || !ps[1].Default {
			t.Errorf("%s partitions after upgrade: %+v; want the legacy and the default one", kind, ps)
		}
		var future int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM readings_`+kind+`_default`).Scan(&future); err != nil || future != 1 {
			t.Errorf("readings_%s_default holds %d buckets (%v), want the one from the future", kind, future, err)
		}
	}
	// Ingest folds into the legacy partition (it holds this month), and
	// maintenance adds the next month and year.
	now := time.Now().UTC()
	if _, err := s.InsertReadings(ctx, []model.Reading{{SensorID: "m1", Metric: "temp", TS: now.Add(-time.Second), Value: 0.5}}); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	if d := rollupMismatches(t, ctx, s.Pool()); len(d) > 0 {
		t.Errorf("rollups differ from the readings after the upgrade: %v", d[:min(len(d), 3)])
	}
	for _, kind := range []string{"1m", "1h"} {
		if created, err := s.EnsureRollupPartitions(ctx, kind, now, 1, now.AddDate(-1, 0, 0)); err != nil || len(created) != 1 {
			t.Errorf("EnsureRollupPartitions(%s) after upgrade: %v, %v; want the next unit only", kind, created, err)
		}
	}
	if d := rollupMismatches(t, ctx, s.Pool()); len(d) > 0 {
		t.Errorf("rollups differ from the readings after maintenance: %v", d[:min(len(d), 3)])
	}
}

// TestRollupPartitions creates monthly and yearly rollup partitions,
// moving buckets waiting in the default partitions into them, and drops
// them whole when past retention.
func TestRollupPartitions(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	// Before any rollup partition: the buckets go to the default ones.
	// December 2025, January and March 2026 (beyond the months created
	// ahead).
	if _, err := s.InsertReadings(ctx, []model.Reading{
		rd("q", "temp", "C", -86400, 1), rd("q", "temp", "C", 60, 2), rd("q", "temp", "C", 60*86400, 3),
	}); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	created, err := s.EnsureRollupPartitions(ctx, "1m", t0, 1, t0.AddDate(0, -6, 0))
	if want := []string{"readings_1m_p202512", "readings_1m_p202601", "readings_1m_p202602"}; err != nil || !slices.Equal(created, want) {
		t.Errorf("EnsureRollupPartitions(1m): %v, %v; want %v (this month, the next, and the past month waiting)", created, err, want)
	}
	created, err = s.EnsureRollupPartitions(ctx, "1h", t0, 1, t0.AddDate(-6, 0, 0))
	if want := []string{"readings_1h_p2025", "readings_1h_p2026", "readings_1h_p2027"}; err != nil || !slices.Equal(created, want) {
		t.Errorf("EnsureRollupPartitions(1h): %v, %v; want %v", created, err, want)
	}
	var left int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM readings_1m_default) + (SELECT count(*) FROM readings_1h_default)`).Scan(&left); err != nil || left != 1 {
		t.Errorf("%d buckets left in the default partitions (%v), want 1 (March's minute waits until March is ahead)", left, err)
	}
	if d := rollupMismatches(t, ctx, s.Pool()); len(d) > 0 {
		t.Errorf("rollups differ from the readings after the move: %v", d)
	}
	// Retention on February 10 of one month: December and January go whole.
	drops, err := s.DropRollups(ctx, t0.AddDate(0, 1, 10), "1m", t0.AddDate(0, 0, 10))
	var targets []string
	for _, d := range drops {
		targets = append(targets, d.Target)
	}
	if want := []string{"readings_1m_p202512"}; err != nil || !slices.Equal(targets, want) {
		t.Errorf("DropRollups(1m): %v, %v; want %v (January ends after the cutoff)", targets, err, want)
	}
	drops, err = s.DropRollups(ctx, t0, "1h", t0)
	if err != nil || len(drops) != 1 || drops[0].Target != "readings_1h_p2025" || drops[0].Bytes == 0 {
		t.Errorf("DropRollups(1h): %+v, %v; want readings_1h_p2025 with its size", drops, err)
	}
	if again, err := s.EnsureRollupPartitions(ctx, "1m", t0, 1, t0.AddDate(0, -6, 0)); err != nil || len(again) != 0 {
		t.Errorf("EnsureRollupPartitions again: %v, %v; want nothing", again, err)
	}
}

// TestDropRawWaitsForBatchWriters: DropRaw takes the batch writers' lock
// before it drops and moves the raw horizon, so a batch that read the
// horizon commits before the drop (and one that comes after reads the new
// horizon).
func TestDropRawWaitsForBatchWriters(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	if _, err := s.EnsurePartitions(ctx, t0, 0, t0); err != nil {
		t.Fatalf("EnsurePartitions: %v", err)
	}
	batch, err := s.Pool().Begin(ctx) // a batch writer between its horizon read and its commit
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback(ctx)
	if _, err := batch.Exec(ctx, lockReadingWriters); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.DropRaw(ctx, t0.AddDate(0, 0, 40), t0.AddDate(0, 0, 10), 0)
		done <- err
	}()
	// Wait until DropRaw is queued behind the advisory lock.
	for waiting := false; !waiting; {
		err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&waiting)
		if err != nil {
			t.Fatalf("pg_locks: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("DropRaw returned (%v) while a batch writer held the lock", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	var horizon time.Time
	if err := batch.QueryRow(ctx, selectRawHorizon).Scan(&horizon); err != nil || horizon.After(t0) {
		t.Errorf("horizon seen by the batch: %v (%v); want the old one", horizon, err)
	}
	if err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("DropRaw: %v", err)
	}
	if err := s.Pool().QueryRow(ctx, selectRawHorizon).Scan(&horizon); err != nil || !horizon.Equal(t0.AddDate(0, 0, 1)) {
		t.Errorf("horizon after the drop: %v (%v); want the end of the dropped day, %v", horizon, err, t0.AddDate(0, 0, 1))
	}
}
