package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The profiler answers on the metrics listener and nowhere on the public
// one: a CPU profile costs the server seconds of work, and heap profiles
// show what is in memory.
func TestPprofOnlyOnMetricsListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	metrics := NewMetricsServer(e.reg).Handler
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		rec := httptest.NewRecorder()
		metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("metrics listener GET %s = %d (%d bytes), want 200 with a body", path, rec.Code, rec.Body.Len())
		}
		resp, err := e.app.Fiber().Test(httptest.NewRequest(http.MethodGet, path, nil))
		if err != nil {
			t.Fatalf("public GET %s: %v", path, err)
		}
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body[:n]), "goroutine profile:") || strings.Contains(string(body[:n]), "heap profile:") || strings.Contains(string(body[:n]), "Types of profiles") {
			t.Errorf("public listener GET %s = %d %.100q: the profiler must not be reachable there", path, resp.StatusCode, body[:n])
		}
	}
	// A write method is not served either.
	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/pprof/symbol", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/pprof/symbol = %d, want 405", rec.Code)
	}
}
