package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

func testBreach(sensor, metric, kind, severity string, value float64, sec int) model.AlertBreach {
	return model.AlertBreach{SensorID: sensor, Metric: metric, Kind: kind, Severity: severity,
		Value: value, LimitOrScore: 30, FirstAt: at(sec), LastAt: at(sec), Count: 1}
}

func TestUpsertAlert(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	a1, inserted, err := s.UpsertAlert(ctx, testBreach("s-1", "temperature", model.AlertThreshold, model.SeverityWarning, 31, 0))
	if err != nil || !inserted {
		t.Fatalf("first breach: inserted %v, err %v", inserted, err)
	}
	if a1.State != model.AlertOpen || a1.Count != 1 || a1.Value != 31 || !a1.OpenedAt.Equal(at(0)) ||
		a1.AckedBy != nil || a1.ResolvedBy != nil || a1.ResolvedAt != nil {
		t.Errorf("opened alert = %+v", a1)
	}

	steps := []struct {
		name         string
		b            model.AlertBreach
		wantSeverity string
		wantCount    int64
	}{
		{"folds into the open alert", testBreach("s-1", "temperature", model.AlertThreshold, model.SeverityWarning, 32, 1), model.SeverityWarning, 2},
		{"escalates to critical", testBreach("s-1", "temperature", model.AlertThreshold, model.SeverityCritical, 50, 2), model.SeverityCritical, 3},
		{"never de-escalates, adds the coalesced count", model.AlertBreach{SensorID: "s-1", Metric: "temperature", Kind: model.AlertThreshold,
			Severity: model.SeverityWarning, Value: 31.5, LimitOrScore: 30, FirstAt: at(3), LastAt: at(5), Count: 3}, model.SeverityCritical, 6},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a, inserted, err := s.UpsertAlert(ctx, st.b)
			if err != nil || inserted {
				t.Fatalf("inserted %v, err %v; want an update", inserted, err)
			}
			if a.ID != a1.ID || a.Severity != st.wantSeverity || a.Count != st.wantCount || a.Value != st.b.Value ||
				!a.OpenedAt.Equal(at(0)) || !a.UpdatedAt.Equal(st.b.LastAt) {
				t.Errorf("alert = %+v; want id %d, severity %s, count %d", a, a1.ID, st.wantSeverity, st.wantCount)
			}
		})
	}

	t.Run("other kind or metric opens another", func(t *testing.T) {
		for _, b := range []model.AlertBreach{
			testBreach("s-1", "temperature", model.AlertSpike, model.SeverityWarning, 50, 6),
			testBreach("s-1", "humidity", model.AlertThreshold, model.SeverityWarning, 50, 6),
		} {
			a, inserted, err := s.UpsertAlert(ctx, b)
			if err != nil || !inserted || a.ID == a1.ID {
				t.Errorf("%s %s: id %d inserted %v err %v; want a new alert", b.Metric, b.Kind, a.ID, inserted, err)
			}
		}
	})

	t.Run("acknowledged alerts still take breaches", func(t *testing.T) {
		if _, changed, err := s.AckAlert(ctx, a1.ID, "bob", at(7)); err != nil || !changed {
			t.Fatalf("AckAlert: changed %v err %v", changed, err)
		}
		a, inserted, err := s.UpsertAlert(ctx, testBreach("s-1", "temperature", model.AlertThreshold, model.SeverityWarning, 33, 8))
		if err != nil || inserted || a.ID != a1.ID || a.State != model.AlertAcknowledged || a.Count != 7 {
			t.Errorf("breach after ack: %+v inserted %v err %v", a, inserted, err)
		}
	})

	t.Run("after resolve a breach opens a new alert", func(t *testing.T) {
		r, err := s.ResolveLiveAlert(ctx, "s-1", "temperature", model.AlertThreshold, at(9))
		if err != nil || r.State != model.AlertResolved || *r.ResolvedBy != model.ResolvedBySystem || !r.ResolvedAt.Equal(at(9)) {
			t.Fatalf("ResolveLiveAlert = %+v, %v", r, err)
		}
		if _, err := s.ResolveLiveAlert(ctx, "s-1", "temperature", model.AlertThreshold, at(9)); !errors.Is(err, ErrNotFound) {
			t.Errorf("second ResolveLiveAlert: %v, want ErrNotFound", err)
		}
		a, inserted, err := s.UpsertAlert(ctx, testBreach("s-1", "temperature", model.AlertThreshold, model.SeverityWarning, 33, 10))
		if err != nil || !inserted || a.ID == a1.ID || a.Count != 1 {
			t.Errorf("breach after resolve: %+v inserted %v err %v", a, inserted, err)
		}
	})
}

// Concurrent breaches of one key must agree on one alert (the partial
// unique index), whoever inserts first.
func TestUpsertAlertConcurrent(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	const n = 8
	var wg sync.WaitGroup
	ids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			a, _, err := s.UpsertAlert(ctx, testBreach("s-9", "pressure", model.AlertSpike, model.SeverityWarning, float64(i), i))
			ids[i], errs[i] = a.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("breach %d: id %d err %v; want all on id %d", i, ids[i], errs[i], ids[0])
		}
	}
	a, err := s.Alert(ctx, ids[0])
	if err != nil || a.Count != n {
		t.Errorf("Alert = %+v, %v; want count %d", a, err, n)
	}
}

func TestAlertLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	open := func(t *testing.T, sensor string) model.Alert {
		t.Helper()
		a, _, err := s.UpsertAlert(ctx, testBreach(sensor, "temperature", model.AlertThreshold, model.SeverityWarning, 40, 0))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("ack then resolve", func(t *testing.T) {
		a := open(t, "a")
		got, changed, err := s.AckAlert(ctx, a.ID, "bob", at(5))
		if err != nil || !changed || got.State != model.AlertAcknowledged || *got.AckedBy != "bob" || !got.UpdatedAt.Equal(at(5)) {
			t.Fatalf("AckAlert = %+v changed %v err %v", got, changed, err)
		}
		again, changed, err := s.AckAlert(ctx, a.ID, "carol", at(6))
		if err != nil || changed || *again.AckedBy != "bob" {
			t.Errorf("second ack: %+v changed %v err %v; want unchanged, acked by bob", again, changed, err)
		}
		res, changed, err := s.ResolveAlert(ctx, a.ID, "carol", "replaced the fan", at(7))
		if err != nil || !changed || res.State != model.AlertResolved || *res.ResolvedBy != "carol" ||
			!res.ResolvedAt.Equal(at(7)) || res.Note != "replaced the fan" || *res.AckedBy != "bob" {
			t.Fatalf("ResolveAlert = %+v changed %v err %v", res, changed, err)
		}
		for _, tc := range []struct {
			name string
			do   func() (model.Alert, bool, error)
		}{
			{"ack", func() (model.Alert, bool, error) { return s.AckAlert(ctx, a.ID, "dave", at(8)) }},
			{"resolve", func() (model.Alert, bool, error) { return s.ResolveAlert(ctx, a.ID, "dave", "", at(8)) }},
		} {
			got, changed, err := tc.do()
			if err != nil || changed || got.State != model.AlertResolved || *got.ResolvedBy != "carol" {
				t.Errorf("%s of a resolved alert: %+v changed %v err %v; want it unchanged", tc.name, got, changed, err)
			}
		}
		stored, err := s.Alert(ctx, a.ID)
		if err != nil || stored.Note != "replaced the fan" || !stored.UpdatedAt.Equal(at(7)) {
			t.Errorf("Alert = %+v, %v", stored, err)
		}
	})

	t.Run("resolve without ack", func(t *testing.T) {
		a := open(t, "b")
		res, changed, err := s.ResolveAlert(ctx, a.ID, "carol", "", at(3))
		if err != nil || !changed || res.AckedBy != nil || res.State != model.AlertResolved {
			t.Errorf("ResolveAlert = %+v changed %v err %v", res, changed, err)
		}
	})

	t.Run("updated_at never goes back", func(t *testing.T) {
		a, _, err := s.UpsertAlert(ctx, testBreach("c", "temperature", model.AlertThreshold, model.SeverityWarning, 40, 100))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := s.AckAlert(ctx, a.ID, "bob", at(50))
		if err != nil || !got.UpdatedAt.Equal(at(100)) {
			t.Errorf("ack with an older clock: updated_at %v err %v, want %v", got.UpdatedAt, err, at(100))
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		if _, _, err := s.AckAlert(ctx, 999999, "bob", at(1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("AckAlert: %v, want ErrNotFound", err)
		}
		if _, _, err := s.ResolveAlert(ctx, 999999, "bob", "", at(1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("ResolveAlert: %v, want ErrNotFound", err)
		}
		if _, err := s.Alert(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("Alert: %v, want ErrNotFound", err)
		}
		if ok, err := s.AlertExists(ctx, 999999); err != nil || ok {
			t.Errorf("AlertExists = %v, %v; want false", ok, err)
		}
		a := open(t, "d")
		if ok, err := s.AlertExists(ctx, a.ID); err != nil || !ok {
			t.Errorf("AlertExists(%d) = %v, %v; want true", a.ID, ok, err)
		}
	})

	t.Run("times are kept to the millisecond", func(t *testing.T) {
		b := testBreach("e", "temperature", model.AlertThreshold, model.SeverityWarning, 40, 0)
		b.FirstAt = at(0).Add(1234567 * time.Nanosecond)
		b.LastAt = b.FirstAt
		a, _, err := s.UpsertAlert(ctx, b)
		if err != nil || !a.OpenedAt.Equal(at(0).Add(time.Millisecond)) {
			t.Errorf("opened_at = %v, err %v; want %v", a.OpenedAt, err, at(0).Add(time.Millisecond))
		}
	})
}

func TestAlertsList(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	var ids []int64
	for i, b := range []model.AlertBreach{
		testBreach("a", "temperature", model.AlertThreshold, model.SeverityWarning, 1, 0),
		testBreach("a", "temperature", model.AlertSpike, model.SeverityCritical, 2, 1),
		testBreach("b", "humidity", model.AlertThreshold, model.SeverityWarning, 3, 2),
		testBreach("b", "humidity", model.AlertOffline, model.SeverityWarning, 4, 3),
	} {
		a, _, err := s.UpsertAlert(ctx, b)
		if err != nil {
			t.Fatalf("breach %d: %v", i, err)
		}
		ids = append(ids, a.ID)
	}
	if _, _, err := s.AckAlert(ctx, ids[1], "bob", at(10)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ResolveAlert(ctx, ids[2], "bob", "", at(10)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		f    model.AlertFilter
		want []int64
	}{
		{"all, newest first", model.AlertFilter{Limit: 10}, []int64{ids[3], ids[2], ids[1], ids[0]}},
		{"limit", model.AlertFilter{Limit: 2}, []int64{ids[3], ids[2]}},
		{"before", model.AlertFilter{Limit: 10, BeforeID: ids[2]}, []int64{ids[1], ids[0]}},
		{"open", model.AlertFilter{Limit: 10, States: []string{"open"}}, []int64{ids[3], ids[0]}},
		{"live", model.AlertFilter{Limit: 10, States: []string{"open", "acknowledged"}}, []int64{ids[3], ids[1], ids[0]}},
		{"sensor", model.AlertFilter{Limit: 10, SensorID: "b"}, []int64{ids[3], ids[2]}},
		{"sensor and state", model.AlertFilter{Limit: 10, SensorID: "a", States: []string{"acknowledged"}}, []int64{ids[1]}},
		{"nothing", model.AlertFilter{Limit: 10, SensorID: "zz"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Alerts(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, a := range got {
				gotIDs = append(gotIDs, a.ID)
			}
			if !equalAlertIDs(gotIDs, tc.want) {
				t.Errorf("ids = %v, want %v", gotIDs, tc.want)
			}
		})
	}

	live, err := s.LiveAlerts(ctx)
	if err != nil || len(live) != 3 || live[0].ID != ids[0] {
		t.Errorf("LiveAlerts = %d alerts (first %+v), %v; want 3, oldest first", len(live), live, err)
	}
	if _, err := s.Alerts(ctx, model.AlertFilter{}); err == nil {
		t.Error("Alerts with limit 0 succeeded")
	}
}

func TestLatestOfflineAlerts(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	first, _, err := s.UpsertAlert(ctx, testBreach("a", "temperature", model.AlertOffline, model.SeverityWarning, 61, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveLiveAlert(ctx, "a", "temperature", model.AlertOffline, at(1)); err != nil {
		t.Fatal(err)
	}
	second, _, err := s.UpsertAlert(ctx, testBreach("a", "temperature", model.AlertOffline, model.SeverityWarning, 61, 100))
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.UpsertAlert(ctx, testBreach("b", "humidity", model.AlertOffline, model.SeverityWarning, 61, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpsertAlert(ctx, testBreach("c", "humidity", model.AlertThreshold, model.SeverityWarning, 61, 5)); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestOfflineAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != second.ID || got[1].ID != other.ID {
		t.Errorf("LatestOfflineAlerts = %+v; want ids %d, %d (not %d)", got, second.ID, other.ID, first.ID)
	}
}

func TestSeriesStats(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	var rs []model.Reading
	for i := range 10 {
		rs = append(rs, rd("a", "temperature", "°C", i*2, float64(i))) // 0..9 every 2 s
	}
	rs = append(rs, rd("b", "humidity", "%", 5, 50))
	if _, err := s.InsertReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got, err := s.SeriesStats(ctx, 4) // a: the newest 4 are 6..9 at 12..18 s
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("SeriesStats = %+v; want 2 series", got)
	}
	a, b := got[0], got[1]
	if a.SensorID != "a" || a.N != 4 || a.Mean != 7.5 || a.Span != 6*time.Second || !a.LastSeen.Equal(at(18)) || a.LastValue != 9 ||
		a.StdDev < 1.118 || a.StdDev > 1.119 {
		t.Errorf("a = %+v", a)
	}
	if b.SensorID != "b" || b.N != 1 || b.Mean != 50 || b.StdDev != 0 || b.Span != 0 {
		t.Errorf("b = %+v", b)
	}
}

func equalAlertIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A person resolving or acknowledging an alert while breaches fold into
// it must not deadlock: every writer of alerts takes the event lock
// (migration 00004) before the row.
func TestAlertTransitionsRaceBreaches(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	const rounds = 200
	live := make(chan int64, 1)
	var wg sync.WaitGroup
	var upsertErr, transitionErr error
	wg.Go(func() {
		defer close(live)
		for i := range rounds {
			a, _, err := s.UpsertAlert(ctx, testBreach("s-7", "temperature", model.AlertThreshold, model.SeverityWarning, 40, i))
			if err != nil {
				upsertErr = err
				return
			}
			select {
			case live <- a.ID:
			default:
			}
		}
	})
	wg.Go(func() {
		n := 0
		for id := range live {
			var err error
			if n%2 == 0 {
				_, _, err = s.AckAlert(ctx, id, "ann", at(n))
			} else {
				_, _, err = s.ResolveAlert(ctx, id, "ann", "fixed", at(n))
			}
			if err != nil {
				transitionErr = err
				return
			}
			n++
		}
	})
	wg.Wait()
	if upsertErr != nil || transitionErr != nil {
		t.Fatalf("upsert: %v; ack or resolve: %v", upsertErr, transitionErr)
	}
}
