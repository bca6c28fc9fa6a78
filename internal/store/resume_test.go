package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

func TestReadingsSince(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	// Three series, readings every second from base; s-2 stops early.
	for _, q := range []string{
		`INSERT INTO readings (sensor_id, metric, ts, value)
		 SELECT 's-' || s, m, $1::timestamptz + i * interval '1 second', i
		 FROM generate_series(1, 3) s, unnest(ARRAY['t','h']) m, generate_series(0, 9) i
		 WHERE NOT (s = 2 AND i > 4)`,
		`INSERT INTO sensors (sensor_id, metric, unit, first_seen, last_seen, last_value)
		 SELECT sensor_id, metric, 'u', min(ts), max(ts), 0 FROM readings WHERE ts >= $1 GROUP BY 1, 2`,
	} {
		if _, err := s.pool.Exec(ctx, q, base); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(rs []model.Reading) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s/%s@%d", r.SensorID, r.Metric, r.TS.Sub(base)/time.Second)
		}
		return out
	}
	tests := []struct {
		name         string
		since        int
		only, except []string
		limit        int
		want         []string
	}{
		{"from the ts on, ordered by ts then key", 8, nil, nil, 100,
			[]string{"s-1/h@8", "s-1/t@8", "s-3/h@8", "s-3/t@8", "s-1/h@9", "s-1/t@9", "s-3/h@9", "s-3/t@9"}},
		{"only", 8, []string{"s-3"}, nil, 100, []string{"s-3/h@8", "s-3/t@8", "s-3/h@9", "s-3/t@9"}},
		{"except", 9, nil, []string{"s-1"}, 100, []string{"s-3/h@9", "s-3/t@9"}},
		{"limit keeps the oldest", 4, nil, nil, 3, []string{"s-1/h@4", "s-1/t@4", "s-2/h@4"}},
		{"nothing after", 10, nil, nil, 100, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ReadingsSince(ctx, base.Add(time.Duration(tt.since)*time.Second), tt.only, tt.except, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g := keys(got); !slices.Equal(g, tt.want) {
				t.Errorf("got %v, want %v", g, tt.want)
			}
			for _, r := range got {
				if r.Unit != "u" {
					t.Fatalf("reading %+v lacks the series unit", r)
				}
			}
		})
	}
}

func TestChatMessagesAfter(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for i := 1; i <= 5; i++ {
		if _, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: "general", User: "ana", Content: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		after int64
		limit int
		want  []int64
	}{{0, 10, []int64{1, 2, 3, 4, 5}}, {3, 10, []int64{4, 5}}, {1, 2, []int64{2, 3}}, {5, 10, []int64{}}} {
		got, err := s.ChatMessagesAfter(ctx, "general", tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("after %d limit %d: %v, want %v", tt.after, tt.limit, ids(got), tt.want)
		}
	}
}

func TestAlertEventIDs(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	breach := func(sensor string) model.Alert {
		a, _, err := s.UpsertAlert(ctx, model.AlertBreach{SensorID: sensor, Metric: "t", Kind: model.AlertThreshold,
			Severity: model.SeverityWarning, Value: 1, FirstAt: at, LastAt: at, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a1 := breach("s-1")
	a2 := breach("s-2")
	a1b := breach("s-1") // folded into a1: a change, so a new event id
	if a1b.ID != a1.ID || !(a1.EventID < a2.EventID && a2.EventID < a1b.EventID) {
		t.Fatalf("event ids %d, %d, %d (alert ids %d, %d, %d): want increasing with every change", a1.EventID, a2.EventID, a1b.EventID, a1.ID, a2.ID, a1b.ID)
	}
	acked, changed, err := s.AckAlert(ctx, a2.ID, "ann", at)
	if err != nil || !changed || acked.EventID <= a1b.EventID {
		t.Fatalf("AckAlert = %+v, %v, %v; want a newer event id", acked, changed, err)
	}
	got, err := s.AlertsAfter(ctx, a1.EventID, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Each alert once, in its current state, ordered by its newest event.
	if len(got) != 2 || got[0].ID != a1.ID || got[0].EventID != a1b.EventID || got[1].ID != a2.ID || got[1].State != model.AlertAcknowledged {
		t.Fatalf("AlertsAfter = %+v", got)
	}
	if got, _ := s.AlertsAfter(ctx, acked.EventID, 10); len(got) != 0 {
		t.Errorf("AlertsAfter the newest event = %+v, want none", got)
	}
}

// TestResumeIDsCommitInOrder checks the promise resume relies on: a client
// that has seen id n never later finds a smaller id appear. A writer whose
// transaction holds a new id makes every other writer of the stream wait
// (on the advisory lock) until it commits, so ids become visible in order.
func TestResumeIDsCommitInOrder(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		insert string
		id     string
		second func() (int64, error)
	}{
		{"direct messages", `INSERT INTO direct_messages (sender, recipient, content) VALUES ('ana', 'bob', 'first')`, "id",
			func() (int64, error) {
				dm, err := s.InsertDirectMessage(ctx, model.DirectMessage{From: "bob", To: "ana", Content: "second"})
				return dm.ID, err
			}},
		{"alert events", `INSERT INTO alerts (sensor_id, metric, kind, severity, value, limit_or_score, opened_at, updated_at)
			VALUES ('s-1', 't', 'threshold', 'warning', 1, 0, now(), now())`, "event_id",
			func() (int64, error) {
				a, _, err := s.UpsertAlert(ctx, model.AlertBreach{SensorID: "s-2", Metric: "t", Kind: model.AlertThreshold,
					Severity: model.SeverityWarning, FirstAt: at, LastAt: at, Count: 1})
				return a.EventID, err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			var first int64
			if err := tx.QueryRow(ctx, tc.insert+" RETURNING "+tc.id).Scan(&first); err != nil {
				t.Fatal(err)
			}
			type result struct {
				id  int64
				err error
			}
			done := make(chan result, 1)
			go func() { id, err := tc.second(); done <- result{id, err} }()
			// The second writer must be waiting for the first one's lock.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var waiting bool
				if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
					AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting {
					break
				}
				select {
				case r := <-done:
					t.Fatalf("second writer finished (id %d, %v) while the first still held id %d uncommitted", r.id, r.err, first)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("second writer never waited for the first")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil || r.id <= first {
				t.Fatalf("second writer got id %d, %v; want above the first's %d", r.id, r.err, first)
			}
		})
	}
}

func TestDirectMessagesAfter(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	var all []int64
	for _, p := range [][2]string{{"ana", "bob"}, {"bob", "ana"}, {"cy", "bob"}, {"ana", "cy"}, {"bob", "ana"}} {
		dm, err := s.InsertDirectMessage(ctx, model.DirectMessage{From: p[0], To: p[1], Content: "x"})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, dm.ID)
	}
	dmIDs := func(ms []model.DirectMessage) []int64 {
		out := make([]int64, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	for _, tt := range []struct {
		user  string
		after int64
		limit int
		want  []int64
	}{
		{"ana", 0, 10, []int64{all[0], all[1], all[3], all[4]}},
		{"ana", all[1], 10, []int64{all[3], all[4]}},
		{"bob", 0, 2, []int64{all[0], all[1]}},
		{"cy", all[2], 10, []int64{all[3]}},
		{"dan", 0, 10, []int64{}},
	} {
		got, err := s.DirectMessagesAfter(ctx, tt.user, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dmIDs(got), tt.want) {
			t.Errorf("%s after %d: %v, want %v", tt.user, tt.after, dmIDs(got), tt.want)
		}
	}
}

// TestReadingsFromSeq: every batch carries the next seq, readings come
// back in commit order whatever their ts, from the cursor's batch on.
func TestReadingsFromSeq(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	batch := func(sensor string, secs ...int) int64 {
		t.Helper()
		var rs []model.Reading
		for _, sec := range secs {
			rs = append(rs, model.Reading{SensorID: sensor, Metric: "t", TS: base.Add(time.Duration(sec) * time.Second), Value: float64(sec)})
		}
		res, err := s.InsertReadings(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Fresh) != len(rs) || res.Fresh[0].Seq == 0 || rs[0].Seq != 0 {
			t.Fatalf("fresh %+v (input %+v): want the batch's seq on the copies only", res.Fresh, rs)
		}
		return res.Fresh[0].Seq
	}
	s1 := batch("s-1", 10, 11)
	s2 := batch("s-2", 5) // an older ts, committed later
	s3 := batch("s-1", 12)
	if !(s1 < s2 && s2 < s3) {
		t.Fatalf("seqs %d, %d, %d: want increasing", s1, s2, s3)
	}
	keys := func(rs []model.Reading) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s@%d#%d", r.SensorID, r.TS.Sub(base)/time.Second, r.Seq-s1)
		}
		return out
	}
	for _, tt := range []struct {
		after        int64
		only, except []string
		limit        int
		want         []string
	}{
		{s2, nil, nil, 10, []string{"s-2@5#1", "s-1@12#2"}},
		{0, nil, nil, 2, []string{"s-1@10#0", "s-1@11#0"}},
		{0, []string{"s-2"}, nil, 10, []string{"s-2@5#1"}},
		{0, nil, []string{"s-1"}, 10, []string{"s-2@5#1"}},
		{s3 + 1, nil, nil, 10, []string{}},
	} {
		got, err := s.ReadingsFromSeq(ctx, tt.after, tt.only, tt.except, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if g := keys(got); !slices.Equal(g, tt.want) {
			t.Errorf("after %d only %v except %v: %v, want %v", tt.after-s1, tt.only, tt.except, g, tt.want)
		}
	}

	last, err := s.LastReadingSeq(ctx)
	if err != nil || last != s3 {
		t.Fatalf("LastReadingSeq = %d, %v; want %d", last, err, s3)
	}
	for _, tt := range []struct {
		from, to int64
		limit    int
		want     []string
	}{
		{s2, s2, 10, []string{"s-2@5#1"}},
		{s1, s3, 10, []string{"s-1@10#0", "s-1@11#0", "s-2@5#1", "s-1@12#2"}},
		{s1, s3, 1, []string{"s-1@10#0"}},
		{s3 + 1, s3 + 5, 10, []string{}},
	} {
		got, err := s.ReadingsInSeqRange(ctx, tt.from, tt.to, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if g := keys(got); !slices.Equal(g, tt.want) {
			t.Errorf("seq range %d..%d: %v, want %v", tt.from-s1, tt.to-s1, g, tt.want)
		}
	}
}

func TestLastReadingSeqOfAnEmptyDatabase(t *testing.T) {
	s := newStore(t)
	if last, err := s.LastReadingSeq(testCtx(t)); err != nil || last != 0 {
		t.Fatalf("LastReadingSeq = %d, %v; want 0", last, err)
	}
}

// LastReadingSeq waits for the batch under way: a seq it returns is
// decided, never committed afterwards.
func TestLastReadingSeqWaitsForTheBatchUnderWay(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var seq int64
	if err := tx.QueryRow(ctx, takeReadingSeq).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if last, err := s.LastReadingSeq(short); err == nil {
		t.Fatalf("LastReadingSeq = %d while batch %d is under way; want it to wait", last, seq)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LastReadingSeq(ctx); err != nil || last != seq {
		t.Fatalf("LastReadingSeq = %d, %v; want %d", last, err, seq)
	}
}
