package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/alerts"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

type nopPoster struct{}

func (nopPoster) PostReliable(context.Context, string, string, any) error { return nil }

// newAlertsEnv serves the alert routes with the real alerts.Detector on a
// real store (detection itself is not running: these are REST tests).
func newAlertsEnv(t *testing.T) (*testEnv, *store.Store) {
	t.Helper()
	st := newStore(t)
	det := alerts.New(alerts.Config{}, st, nopPoster{}, nil, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return newEnv(t, st, func(c *Config) { c.Alerts = det }), st
}

func TestAlertsList(t *testing.T) {
	t.Parallel()
	e, st := newAlertsEnv(t)
	ctx := testCtx(t)
	tok := e.token(t, "victor", model.RoleViewer)

	var empty struct {
		Alerts []model.Alert `json:"alerts"`
	}
	if r := e.do(t, http.MethodGet, "/api/alerts", tok, nil); !strings.Contains(string(r.body), `"alerts":[]`) {
		t.Errorf("no alerts: %s, want {\"alerts\":[]}", r)
	} else {
		decode(t, r, &empty)
	}

	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var ids []int64
	for i, b := range []model.AlertBreach{
		{SensorID: "s-1", Metric: "temperature", Kind: model.AlertThreshold, Severity: model.SeverityWarning, Value: 61, LimitOrScore: 60},
		{SensorID: "s-2", Metric: "humidity", Kind: model.AlertSpike, Severity: model.SeverityCritical, Value: 99, LimitOrScore: 12.5},
		{SensorID: "s-1", Metric: "temperature", Kind: model.AlertOffline, Severity: model.SeverityWarning, Value: 61, LimitOrScore: 60},
	} {
		b.FirstAt, b.LastAt, b.Count = at.Add(time.Duration(i)*time.Second), at.Add(time.Duration(i)*time.Second), 1
		a, _, err := st.UpsertAlert(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	if _, _, err := st.AckAlert(ctx, ids[1], "bob", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ResolveAlert(ctx, ids[2], "bob", "back online", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{ids[2], ids[1], ids[0]}},
		{"?state=open", []int64{ids[0]}},
		{"?state=live", []int64{ids[1], ids[0]}},
		{"?state=open,resolved", []int64{ids[2], ids[0]}},
		{"?sensor_id=s-1", []int64{ids[2], ids[0]}},
		{"?sensor_id=s-1&state=resolved", []int64{ids[2]}},
		{"?limit=1", []int64{ids[2]}},
		{fmt.Sprintf("?before=%d", ids[2]), []int64{ids[1], ids[0]}},
	} {
		t.Run("list"+tc.query, func(t *testing.T) {
			var got struct {
				Alerts []model.Alert `json:"alerts"`
			}
			decode(t, e.do(t, http.MethodGet, "/api/alerts"+tc.query, tok, nil), &got)
			var gotIDs []int64
			for _, a := range got.Alerts {
				gotIDs = append(gotIDs, a.ID)
			}
			if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
				t.Errorf("ids = %v, want %v", gotIDs, tc.want)
			}
		})
	}

	t.Run("alert JSON", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/api/alerts?state=acknowledged", tok, nil)
		var raw struct {
			Alerts []map[string]any `json:"alerts"`
		}
		decode(t, r, &raw)
		if len(raw.Alerts) != 1 {
			t.Fatalf("alerts = %s", r.body)
		}
		a := raw.Alerts[0]
		want := []string{"id", "sensor_id", "metric", "kind", "severity", "value", "limit_or_score", "state",
			"opened_at", "updated_at", "count", "acked_by", "resolved_by", "resolved_at", "event_id"}
		if len(a) != len(want) {
			t.Errorf("alert has %d fields, want exactly %v: %s", len(a), want, r.body)
		}
		for _, k := range want {
			if _, ok := a[k]; !ok {
				t.Errorf("alert lacks %q: %s", k, r.body)
			}
		}
		if a["acked_by"] != "bob" || a["resolved_by"] != nil || a["state"] != "acknowledged" || a["kind"] != "spike" ||
			a["opened_at"] != "2026-05-01T10:00:01.000Z" {
			t.Errorf("alert = %v", a)
		}
	})

	for _, tc := range []struct{ query, msg string }{
		{"?state=closed", "state must be"},
		{"?sensor_id=a/b", "sensor_id"},
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?before=x", "before"},
	} {
		t.Run("bad"+tc.query, func(t *testing.T) {
			wantError(t, e.do(t, http.MethodGet, "/api/alerts"+tc.query, tok, nil), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}

	t.Run("one alert with its discussion", func(t *testing.T) {
		for _, content := range []string{"looking at it", "fan replaced"} {
			if _, err := st.InsertChatMessage(ctx, model.ChatMessage{Room: model.RoomAlerts, User: "bob", Content: content, AlertID: &ids[2]}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.InsertChatMessage(ctx, model.ChatMessage{Room: model.RoomAlerts, User: "bob", Content: "other", AlertID: &ids[0]}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Alert    model.Alert         `json:"alert"`
			Note     string              `json:"note"`
			Messages []model.ChatMessage `json:"messages"`
		}
		decode(t, e.do(t, http.MethodGet, fmt.Sprintf("/api/alerts/%d", ids[2]), tok, nil), &got)
		if got.Alert.ID != ids[2] || got.Alert.State != model.AlertResolved || got.Note != "back online" {
			t.Errorf("alert = %+v note %q", got.Alert, got.Note)
		}
		if len(got.Messages) != 2 || got.Messages[0].Content != "looking at it" || got.Messages[1].Content != "fan replaced" {
			t.Errorf("messages = %+v, want the two about this alert, oldest first", got.Messages)
		}
		var none struct {
			Messages json.RawMessage `json:"messages"`
		}
		decode(t, e.do(t, http.MethodGet, fmt.Sprintf("/api/alerts/%d", ids[1]), tok, nil), &none)
		if string(none.Messages) != "[]" {
			t.Errorf("messages of an undiscussed alert = %s, want []", none.Messages)
		}
	})

	t.Run("unknown and bad ids", func(t *testing.T) {
		wantError(t, e.do(t, http.MethodGet, "/api/alerts/999999", tok, nil), http.StatusNotFound, "not_found", "no alert 999999")
		wantError(t, e.do(t, http.MethodGet, "/api/alerts/abc", tok, nil), http.StatusBadRequest, "bad_request", "positive integer")
		wantError(t, e.do(t, http.MethodGet, "/api/alerts/0", tok, nil), http.StatusBadRequest, "bad_request", "positive integer")
	})

	t.Run("needs a token", func(t *testing.T) {
		wantError(t, e.do(t, http.MethodGet, "/api/alerts", "", nil), http.StatusUnauthorized, "unauthorized", "Bearer")
	})
}

type rulesResponse struct {
	SensorID string            `json:"sensor_id"`
	Rules    []model.AlertRule `json:"rules"`
	Defaults map[string]any    `json:"defaults"`
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	e, _ := newAlertsEnv(t)
	op := e.token(t, "olivia", model.RoleOperator)
	viewer := e.token(t, "victor", model.RoleViewer)

	t.Run("defaults when nothing is stored", func(t *testing.T) {
		var got rulesResponse
		decode(t, e.do(t, http.MethodGet, "/api/sensors/s-1/rules", viewer, nil), &got)
		if got.SensorID != "s-1" || got.Rules == nil || len(got.Rules) != 0 {
			t.Errorf("got %+v, want no rules", got)
		}
		spike, _ := got.Defaults["spike"].(map[string]any)
		stale, _ := got.Defaults["stale"].(map[string]any)
		if spike["k"] != 4.0 || spike["warmup"] != 30.0 || spike["resolve_after"] != 5.0 ||
			stale["min_after_seconds"] != 60.0 || stale["interval_factor"] != 10.0 {
			t.Errorf("defaults = %v", got.Defaults)
		}
	})

	body := `{"rules":[
		{"metric":"temperature","kind":"threshold","min":-10,"max":60},
		{"metric":"temperature","kind":"spike","k":6,"warmup":100,"resolve_after":10},
		{"metric":"humidity","kind":"stale","after_seconds":300},
		{"metric":"humidity","kind":"spike","enabled":false}]}`
	var put rulesResponse
	decode(t, e.do(t, http.MethodPut, "/api/sensors/s-1/rules", op, body), &put)
	if len(put.Rules) != 4 {
		t.Fatalf("PUT stored %+v", put.Rules)
	}
	var got rulesResponse
	decode(t, e.do(t, http.MethodGet, "/api/sensors/s-1/rules", viewer, nil), &got)
	byKey := map[string]model.AlertRule{}
	for _, r := range got.Rules {
		byKey[r.Metric+"/"+r.Kind] = r
	}
	th, sp, stale, off := byKey["temperature/threshold"], byKey["temperature/spike"], byKey["humidity/stale"], byKey["humidity/spike"]
	if !th.Enabled || *th.Min != -10 || *th.Max != 60 || th.UpdatedBy != "olivia" || th.SensorID != "s-1" {
		t.Errorf("threshold = %+v", th)
	}
	if *sp.K != 6 || *sp.Warmup != 100 || *sp.ResolveAfter != 10 {
		t.Errorf("spike = %+v", sp)
	}
	if *stale.AfterSeconds != 300 || off.Enabled {
		t.Errorf("stale = %+v, disabled spike = %+v", stale, off)
	}

	t.Run("what GET returns can be sent back", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/api/sensors/s-1/rules", viewer, nil)
		var again rulesResponse
		decode(t, e.do(t, http.MethodPut, "/api/sensors/s-1/rules", op, string(r.body)), &again)
		if len(again.Rules) != 4 {
			t.Errorf("round trip stored %+v", again.Rules)
		}
	})

	t.Run("other sensors keep the defaults", func(t *testing.T) {
		var other rulesResponse
		decode(t, e.do(t, http.MethodGet, "/api/sensors/s-2/rules", viewer, nil), &other)
		if len(other.Rules) != 0 {
			t.Errorf("s-2 rules = %+v", other.Rules)
		}
	})

	for _, tc := range []struct {
		name, body, msg string
	}{
		{"min not below max", `{"rules":[{"metric":"t","kind":"threshold","min":5,"max":5}]}`, "rules[0] (t threshold): min (5) must be less than max (5)"},
		{"threshold without limits", `{"rules":[{"metric":"t","kind":"threshold"}]}`, "needs min, max or both"},
		{"k zero", `{"rules":[{"metric":"t","kind":"spike","k":0}]}`, "k must be greater than 0"},
		{"k negative", `{"rules":[{"metric":"t","kind":"spike","k":-1}]}`, "k must be greater than 0"},
		{"warm-up too short", `{"rules":[{"metric":"t","kind":"spike","warmup":10}]}`, "warmup must be an integer from 30"},
		{"warm-up not an integer", `{"rules":[{"metric":"t","kind":"spike","warmup":30.5}]}`, "must be an integer"},
		{"resolve_after zero", `{"rules":[{"metric":"t","kind":"threshold","max":1,"resolve_after":0}]}`, "resolve_after must be"},
		{"stale too short", `{"rules":[{"metric":"t","kind":"stale","after_seconds":0.5}]}`, "after_seconds must be from 1"},
		{"field of another kind", `{"rules":[{"metric":"t","kind":"stale","k":3}]}`, "k does not apply to kind stale"},
		{"resolve_after on stale", `{"rules":[{"metric":"t","kind":"stale","resolve_after":3}]}`, "offline alerts resolve on the next reading"},
		{"unknown kind", `{"rules":[{"metric":"t","kind":"flatline"}]}`, `unknown kind "flatline"`},
		{"no kind", `{"rules":[{"metric":"t"}]}`, "kind is required"},
		{"bad metric", `{"rules":[{"metric":"a b","kind":"spike"}]}`, "metric: invalid character"},
		{"duplicate", `{"rules":[{"metric":"t","kind":"spike"},{"metric":"t","kind":"spike","k":3}]}`, "same metric and kind as rules[0]"},
		{"several errors at once", `{"rules":[{"metric":"t","kind":"spike","k":0},{"metric":"u","kind":"stale","after_seconds":0}]}`, "; rules[1]"},
		{"unknown field", `{"rules":[{"metric":"t","kind":"threshold","maximum":3}]}`, `unknown field "maximum"`},
		{"rules missing", `{}`, `"rules":[] removes every rule`},
		{"not JSON", `rules`, "malformed JSON"},
		{"empty body", ``, "empty body"},
		{"rules not a list", `{"rules":{}}`, "must be a list"},
		{"trailing data", `{"rules":[]} {}`, "data after"},
	} {
		t.Run("bad: "+tc.name, func(t *testing.T) {
			wantError(t, e.do(t, http.MethodPut, "/api/sensors/s-3/rules", op, tc.body), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}
	t.Run("bad sensor id", func(t *testing.T) {
		wantError(t, e.do(t, http.MethodPut, "/api/sensors/a%20b/rules", op, `{"rules":[]}`), http.StatusBadRequest, "bad_request", "sensor id")
		wantError(t, e.do(t, http.MethodGet, "/api/sensors/a%20b/rules", op, nil), http.StatusBadRequest, "bad_request", "sensor id")
	})

	for _, role := range []model.Role{model.RoleViewer, model.RoleAnalyst} {
		t.Run("forbidden for "+string(role), func(t *testing.T) {
			tok := e.token(t, "someone", role)
			wantError(t, e.do(t, http.MethodPut, "/api/sensors/s-1/rules", tok, `{"rules":[]}`),
				http.StatusForbidden, "forbidden", "needs role operator or above; you are "+string(role))
		})
	}
	t.Run("admins may", func(t *testing.T) {
		var got rulesResponse
		decode(t, e.do(t, http.MethodPut, "/api/sensors/s-1/rules", e.token(t, "root", model.RoleAdmin), `{"rules":[]}`), &got)
		if len(got.Rules) != 0 {
			t.Errorf("rules after clearing = %+v", got.Rules)
		}
	})
}
