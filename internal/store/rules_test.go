package store

import (
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func alertPtr[T any](v T) *T { return &v }

func TestAlertRules(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	first := []model.AlertRule{
		{Metric: "temperature", Kind: model.RuleThreshold, Enabled: true, Min: alertPtr(-10.0), Max: alertPtr(60.0), ResolveAfter: alertPtr(3)},
		{Metric: "temperature", Kind: model.RuleSpike, Enabled: true, K: alertPtr(5.0), Warmup: alertPtr(50)},
		{Metric: "humidity", Kind: model.RuleStale, Enabled: false},
	}
	got, err := s.ReplaceAlertRules(ctx, "s-1", "alice", at(1), first)
	if err != nil {
		t.Fatalf("ReplaceAlertRules: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("stored %d rules, want 3: %+v", len(got), got)
	}
	// Ordered by metric, then kind.
	h, sp, th := got[0], got[1], got[2]
	if h.Metric != "humidity" || h.Kind != model.RuleStale || h.Enabled || h.AfterSeconds != nil {
		t.Errorf("stale rule = %+v", h)
	}
	if sp.Kind != model.RuleSpike || *sp.K != 5 || *sp.Warmup != 50 || sp.Min != nil || sp.ResolveAfter != nil {
		t.Errorf("spike rule = %+v", sp)
	}
	if th.Kind != model.RuleThreshold || *th.Min != -10 || *th.Max != 60 || *th.ResolveAfter != 3 ||
		th.SensorID != "s-1" || th.UpdatedBy != "alice" || !th.UpdatedAt.Equal(at(1)) {
		t.Errorf("threshold rule = %+v", th)
	}

	if _, err := s.ReplaceAlertRules(ctx, "s-2", "bob", at(2), []model.AlertRule{
		{Metric: "pressure", Kind: model.RuleThreshold, Enabled: true, Max: alertPtr(1030.0)},
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("replace drops what is not sent again", func(t *testing.T) {
		got, err := s.ReplaceAlertRules(ctx, "s-1", "carol", at(3), []model.AlertRule{
			{Metric: "temperature", Kind: model.RuleStale, Enabled: true, AfterSeconds: alertPtr(120.0)},
		})
		if err != nil || len(got) != 1 || *got[0].AfterSeconds != 120 || got[0].UpdatedBy != "carol" {
			t.Fatalf("ReplaceAlertRules = %+v, %v", got, err)
		}
	})

	t.Run("all sensors", func(t *testing.T) {
		all, err := s.AlertRules(ctx, "")
		if err != nil || len(all) != 2 || all[0].SensorID != "s-1" || all[1].SensorID != "s-2" {
			t.Errorf("AlertRules(\"\") = %+v, %v", all, err)
		}
	})

	t.Run("empty list clears", func(t *testing.T) {
		got, err := s.ReplaceAlertRules(ctx, "s-2", "bob", at(4), nil)
		if err != nil || len(got) != 0 {
			t.Errorf("ReplaceAlertRules(nil) = %+v, %v", got, err)
		}
		one, err := s.AlertRules(ctx, "s-2")
		if err != nil || len(one) != 0 {
			t.Errorf("AlertRules(s-2) = %+v, %v", one, err)
		}
	})

	t.Run("the table refuses min >= max", func(t *testing.T) {
		_, err := s.ReplaceAlertRules(ctx, "s-3", "bob", at(5), []model.AlertRule{
			{Metric: "x", Kind: model.RuleThreshold, Enabled: true, Min: alertPtr(5.0), Max: alertPtr(5.0)},
		})
		if err == nil {
			t.Error("stored a threshold with min = max")
		}
	})
}
