package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

type silenceJSON struct {
	ID        int64   `json:"id"`
	SensorID  string  `json:"sensor_id"`
	Metric    *string `json:"metric"`
	Kind      *string `json:"kind"`
	Reason    string  `json:"reason"`
	CreatedBy string  `json:"created_by"`
	CreatedAt string  `json:"created_at"`
	Until     string  `json:"until"`
	EndedBy   *string `json:"ended_by"`
	EndedAt   *string `json:"ended_at"`
}

func TestSilencesREST(t *testing.T) {
	t.Parallel()
	e, _ := newAlertsEnv(t)
	viewer := e.token(t, "victor", model.RoleViewer)
	analyst := e.token(t, "ann", model.RoleAnalyst)
	op := e.token(t, "olivia", model.RoleOperator)

	if r := e.do(t, http.MethodGet, "/api/silences", viewer, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"silences":[]`) {
		t.Fatalf("no silences: %s", r)
	}

	t.Run("only operators and admins silence", func(t *testing.T) {
		for _, tok := range []string{viewer, analyst} {
			r := e.do(t, http.MethodPost, "/api/silences", tok, `{"sensor_id":"boiler-1","duration_seconds":60}`)
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "needs role operator") {
				t.Errorf("POST as a non-operator: %s", r)
			}
		}
	})

	t.Run("bad requests store nothing", func(t *testing.T) {
		past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		for _, tc := range []struct{ body, want string }{
			{`{"sensor_id":"boiler-1"}`, "either until"},
			{`{"sensor_id":"boiler-1","duration_seconds":60,"until":"2030-01-01T00:00:00Z"}`, "either until"},
			{`{"sensor_id":"boiler-1","until":"` + past + `"}`, "until must be in the future"},
			{`{"sensor_id":"boiler-1","duration_seconds":3000000}`, "at most 30 days"},
			{`{"sensor_id":"boiler-1","metric":"temperature","duration_seconds":60}`, "metric and kind go together"},
			{`{"sensor_id":"boiler-1","metric":"temperature","kind":"offline","duration_seconds":60}`, `unknown kind \"offline\"`},
			{`{"sensor_id":"bad id","duration_seconds":60}`, "sensor_id: invalid character"},
			{`{"sensor_id":"boiler-1","duration_seconds":60,"reason":"` + strings.Repeat("x", 501) + `"}`, "reason is 501 characters"},
			{`{"sensor_id":"boiler-1","duration":60}`, `unknown field \"duration\"`},
			{`{"sensor_id":"boiler-1","duration_seconds":"1h"}`, `must be a number`},
		} {
			r := e.do(t, http.MethodPost, "/api/silences", op, tc.body)
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("POST %s: %s, want 400 saying %q", tc.body, r, tc.want)
			}
		}
		if r := e.do(t, http.MethodGet, "/api/silences", op, nil); !strings.Contains(string(r.body), `"silences":[]`) {
			t.Errorf("something was stored: %s", r)
		}
	})

	var whole, rule silenceJSON
	t.Run("create", func(t *testing.T) {
		before := time.Now()
		r := e.do(t, http.MethodPost, "/api/silences", op, `{"sensor_id":"boiler-1","duration_seconds":3600,"reason":" pump swap "}`)
		if r.status != http.StatusCreated {
			t.Fatalf("POST: %s", r)
		}
		var body struct{ Silence silenceJSON }
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		whole = body.Silence
		until, _ := time.Parse(time.RFC3339, whole.Until)
		if whole.ID == 0 || whole.SensorID != "boiler-1" || whole.Metric != nil || whole.Kind != nil || whole.Reason != "pump swap" ||
			whole.CreatedBy != "olivia" || whole.EndedAt != nil || until.Before(before.Add(time.Hour-time.Second)) || until.After(time.Now().Add(time.Hour)) {
			t.Errorf("silence = %+v", whole)
		}
		end := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		r = e.do(t, http.MethodPost, "/api/silences", op,
			`{"sensor_id":"pump-2","metric":"pressure","kind":"threshold","until":"`+end+`"}`)
		if r.status != http.StatusCreated {
			t.Fatalf("POST: %s", r)
		}
		body.Silence = silenceJSON{}
		_ = json.Unmarshal(r.body, &body)
		rule = body.Silence
		if rule.Metric == nil || *rule.Metric != "pressure" || rule.Kind == nil || *rule.Kind != "threshold" {
			t.Errorf("rule silence = %+v", rule)
		}
	})

	list := func(t *testing.T, query string) []int64 {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/silences"+query, viewer, nil)
		var body struct{ Silences []silenceJSON }
		decode(t, r, &body)
		var ids []int64
		for _, s := range body.Silences {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if got := list(t, ""); fmt.Sprint(got) != fmt.Sprint([]int64{rule.ID, whole.ID}) {
		t.Errorf("list = %v, want newest first", got)
	}
	if got := list(t, "?sensor_id=boiler-1"); fmt.Sprint(got) != fmt.Sprint([]int64{whole.ID}) {
		t.Errorf("list of boiler-1 = %v", got)
	}

	t.Run("end", func(t *testing.T) {
		path := fmt.Sprintf("/api/silences/%d", whole.ID)
		if r := e.do(t, http.MethodDelete, path, analyst, nil); r.status != http.StatusForbidden {
			t.Errorf("DELETE as analyst: %s", r)
		}
		r := e.do(t, http.MethodDelete, path, op, nil)
		var body struct{ Silence silenceJSON }
		decode(t, r, &body)
		if body.Silence.EndedBy == nil || *body.Silence.EndedBy != "olivia" || body.Silence.EndedAt == nil {
			t.Errorf("ended = %+v", body.Silence)
		}
		if r := e.do(t, http.MethodDelete, path, op, nil); r.status != http.StatusConflict || !strings.Contains(string(r.body), "already ended by olivia") {
			t.Errorf("DELETE again: %s, want 409", r)
		}
		if r := e.do(t, http.MethodDelete, "/api/silences/999999", op, nil); r.status != http.StatusNotFound {
			t.Errorf("DELETE unknown: %s, want 404", r)
		}
		if r := e.do(t, http.MethodDelete, "/api/silences/x", op, nil); r.status != http.StatusBadRequest {
			t.Errorf("DELETE x: %s, want 400", r)
		}
	})

	if got := list(t, "?active=true"); fmt.Sprint(got) != fmt.Sprint([]int64{rule.ID}) {
		t.Errorf("active = %v, want only the rule's", got)
	}
	if r := e.do(t, http.MethodGet, "/api/silences?active=maybe", viewer, nil); r.status != http.StatusBadRequest {
		t.Errorf("active=maybe: %s", r)
	}
}
