package store

import (
	"errors"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func TestSilences(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	whole, err := s.InsertSilence(ctx, model.Silence{SensorID: "boiler-1", Reason: "maintenance",
		CreatedBy: "alice", CreatedAt: at(0), Until: at(3600)})
	if err != nil {
		t.Fatalf("InsertSilence: %v", err)
	}
	if whole.ID == 0 || whole.Metric != "" || whole.Kind != "" || whole.Reason != "maintenance" || whole.CreatedBy != "alice" ||
		!whole.CreatedAt.Equal(at(0)) || !whole.Until.Equal(at(3600)) || whole.EndedAt != nil || whole.EndedBy != nil {
		t.Fatalf("stored %+v", whole)
	}
	rule, err := s.InsertSilence(ctx, model.Silence{SensorID: "boiler-1", Metric: "temperature", Kind: model.RuleThreshold,
		CreatedBy: "bob", CreatedAt: at(10), Until: at(70)})
	if err != nil || rule.Metric != "temperature" || rule.Kind != model.RuleThreshold {
		t.Fatalf("InsertSilence(rule) = %+v, %v", rule, err)
	}
	other, err := s.InsertSilence(ctx, model.Silence{SensorID: "pump-2", CreatedBy: "bob", CreatedAt: at(20), Until: at(7200)})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the table refuses half a rule", func(t *testing.T) {
		if _, err := s.InsertSilence(ctx, model.Silence{SensorID: "x", Metric: "temperature", CreatedBy: "a",
			CreatedAt: at(0), Until: at(1)}); err == nil {
			t.Error("a metric without a kind was stored")
		}
	})

	t.Run("list", func(t *testing.T) {
		all, err := s.Silences(ctx, model.SilenceFilter{})
		if err != nil || len(all) != 3 || all[0].ID != other.ID || all[2].ID != whole.ID {
			t.Fatalf("Silences() = %+v, %v", all, err)
		}
		one, err := s.Silences(ctx, model.SilenceFilter{SensorID: "boiler-1", Limit: 1})
		if err != nil || len(one) != 1 || one[0].ID != rule.ID {
			t.Fatalf("Silences(boiler-1, limit 1) = %+v, %v", one, err)
		}
		// At 100 s the rule's silence (until 70 s) has expired.
		in, err := s.Silences(ctx, model.SilenceFilter{InForce: at(100)})
		if err != nil || len(in) != 2 || in[0].ID != other.ID || in[1].ID != whole.ID {
			t.Fatalf("Silences(in force at 100 s) = %+v, %v", in, err)
		}
	})

	t.Run("end", func(t *testing.T) {
		got, changed, err := s.EndSilence(ctx, whole.ID, "carol", at(600))
		if err != nil || !changed || got.EndedBy == nil || *got.EndedBy != "carol" || !got.EndedAt.Equal(at(600)) {
			t.Fatalf("EndSilence = %+v, %v, %v", got, changed, err)
		}
		again, changed, err := s.EndSilence(ctx, whole.ID, "dave", at(700))
		if err != nil || changed || *again.EndedBy != "carol" {
			t.Errorf("EndSilence again = %+v, %v, %v; want it unchanged", again, changed, err)
		}
		expired, changed, err := s.EndSilence(ctx, rule.ID, "dave", at(70))
		if err != nil || changed || expired.EndedAt != nil {
			t.Errorf("EndSilence of an expired silence = %+v, %v, %v; want it unchanged", expired, changed, err)
		}
		if _, _, err := s.EndSilence(ctx, 999999, "dave", at(0)); !errors.Is(err, ErrNotFound) {
			t.Errorf("EndSilence(unknown) = %v, want ErrNotFound", err)
		}
		in, _ := s.Silences(ctx, model.SilenceFilter{InForce: at(601)})
		if len(in) != 1 || in[0].ID != other.ID {
			t.Errorf("in force after the end: %+v", in)
		}
	})

	t.Run("an alert keeps the silence it opened under", func(t *testing.T) {
		b := model.AlertBreach{SensorID: "pump-2", Metric: "pressure", Kind: model.AlertThreshold, Severity: model.SeverityWarning,
			Value: 9, LimitOrScore: 8, FirstAt: at(30), LastAt: at(30), Count: 1, SilenceID: other.ID}
		a, inserted, err := s.UpsertAlert(ctx, b)
		if err != nil || !inserted || a.SilenceID != other.ID {
			t.Fatalf("UpsertAlert = %+v, %v, %v", a, inserted, err)
		}
		// A later breach without a silence folds in and keeps it.
		b.SilenceID, b.LastAt = 0, at(40)
		a, inserted, err = s.UpsertAlert(ctx, b)
		if err != nil || inserted || a.SilenceID != other.ID {
			t.Fatalf("second UpsertAlert = %+v, %v, %v", a, inserted, err)
		}
		b.SensorID = "boiler-1"
		a, _, err = s.UpsertAlert(ctx, b)
		if err != nil || a.SilenceID != 0 {
			t.Fatalf("UpsertAlert without a silence = %+v, %v", a, err)
		}
		list, err := s.Alerts(ctx, model.AlertFilter{SensorID: "pump-2", Limit: 10})
		if err != nil || len(list) != 1 || list[0].SilenceID != other.ID {
			t.Errorf("Alerts = %+v, %v", list, err)
		}
	})
}
