package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	var got map[string]string
	decode(t, e.do(t, http.MethodGet, "/healthz", "", nil), &got)
	if got["status"] != "ok" {
		t.Errorf("GET /healthz = %v", got)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("mqtt: not connected") }
	tests := []struct {
		name   string
		checks []ReadyCheck
		status int
		want   map[string]string
	}{
		{"no checks", nil, http.StatusOK, map[string]string{}},
		{"all pass", []ReadyCheck{{"database", st.Ping}, {"mqtt_ingest", ok}}, http.StatusOK,
			map[string]string{"database": "ok", "mqtt_ingest": "ok"}},
		{"one fails", []ReadyCheck{{"database", st.Ping}, {"mqtt_ingest", down}, {"mqtt_devices", ok}}, http.StatusServiceUnavailable,
			map[string]string{"database": "ok", "mqtt_ingest": "mqtt: not connected", "mqtt_devices": "ok"}},
		{"all fail", []ReadyCheck{{"mqtt_ingest", down}, {"mqtt_devices", down}}, http.StatusServiceUnavailable,
			map[string]string{"mqtt_ingest": "mqtt: not connected", "mqtt_devices": "mqtt: not connected"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, st, func(c *Config) { c.Ready = tc.checks })
			r := e.do(t, http.MethodGet, "/readyz", "", nil)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; %s", r.status, tc.status, r.body)
			}
			r.status = http.StatusOK // decode checks the body only
			var got struct {
				Ready  bool              `json:"ready"`
				Checks map[string]string `json:"checks"`
			}
			decode(t, r, &got)
			if got.Ready != (tc.status == http.StatusOK) {
				t.Errorf("ready = %v with status %d", got.Ready, tc.status)
			}
			if len(got.Checks) != len(tc.want) {
				t.Errorf("checks = %v, want %v", got.Checks, tc.want)
			}
			for k, v := range tc.want {
				if got.Checks[k] != v {
					t.Errorf("checks[%q] = %q, want %q", k, got.Checks[k], v)
				}
			}
		})
	}

	t.Run("database down", func(t *testing.T) {
		// A closed pool is what a lost database looks like to Ping.
		st2 := newStore(t)
		st2.Close()
		e := newEnv(t, st, func(c *Config) { c.Ready = []ReadyCheck{{"database", st2.Ping}} })
		r := e.do(t, http.MethodGet, "/readyz", "", nil)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"database":"store: ping:`) {
			t.Errorf("GET /readyz with the database closed = %s, want 503 naming the database", r)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok := e.token(t, "alice", model.RoleViewer)
	for _, target := range []string{
		"/api/sensors/s-1/readings",
		"/api/sensors/s-2/readings?metric=temperature",
		"/api/sensors/bad%21/readings",
		"/healthz",
	} {
		e.do(t, http.MethodGet, target, tok, nil)
	}
	e.do(t, http.MethodGet, "/api/sensors", "", nil)              // no token
	e.do(t, http.MethodGet, "/no/such/path", "", nil)             // no static files: 404
	e.do(t, http.MethodGet, "/api/nope", tok, nil)                // API 404
	e.do(t, http.MethodGet, "/api/sensors/s-1/readings", "", nil) // no token

	// /metrics is on its own listener (NewMetricsServer), not the App.
	rec := httptest.NewRecorder()
	NewMetricsServer(e.reg).Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type = %q", ct)
	}
	body := string(r.body)
	for _, want := range []string{
		`watchroom_http_requests_total{code="200",route="/api/sensors/:id/readings"} 2`,
		`watchroom_http_requests_total{code="400",route="/api/sensors/:id/readings"} 1`,
		`watchroom_http_requests_total{code="200",route="/healthz"} 1`,
		`watchroom_http_rejected_total{reason="no_token"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Paths are not labels: clients must not be able to mint series.
	for _, raw := range []string{"s-1", "s-2", "bad", "/no/such/path", "/api/nope"} {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "watchroom_http_requests_total{") && strings.Contains(line, raw) {
				t.Errorf("a raw path became a label: %s", line)
			}
		}
	}
}
