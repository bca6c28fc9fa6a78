package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

// The running server's GET /api/export/readings writes what `watchroom
// export` writes, for the same filters, and serves the contracts in docs/
// as they are, without a login.
func TestHTTPExportAndContracts(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var rs []model.Reading
	for i := range 2000 {
		rs = append(rs, model.Reading{SensorID: fmt.Sprintf("hx-%d", i%4), Metric: []string{"temp", "hum"}[i%2], Unit: "C",
			TS: t0.Add(time.Duration(i) * 1500 * time.Millisecond), Value: float64(i) / 3})
	}
	if _, err := st.InsertReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		args  []string
	}{
		{"format=csv", []string{"--format", "csv"}},
		{"format=ndjson&sensor_id=hx-1&from=2026-03-01T00:10:00Z&to=2026-03-01T00:20:00Z",
			[]string{"--format", "ndjson", "--sensor-id", "hx-1", "--from", "2026-03-01T00:10:00Z", "--to", "2026-03-01T00:20:00Z"}},
	} {
		var got string
		status := getJSON(t, e.srv.addr, "/api/export/readings?"+tc.query, e.token, &got)
		want, _, err := runData(t, ctx, append([]string{"export", "--database-url", e.db}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || got != want || len(want) < 100 {
			t.Errorf("GET /api/export/readings?%s: %d, %d bytes; watchroom export: %d bytes", tc.query, status, len(got), len(want))
		}
	}
	if status := getJSON(t, e.srv.addr, "/api/export/readings", login(t, e.srv.addr, "victor", "victor-password"), nil); status != http.StatusForbidden {
		t.Errorf("export as a viewer: %d, want 403", status)
	}

	for _, name := range []string{"asyncapi.yaml", "openapi.yaml"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if status := getJSON(t, e.srv.addr, "/api/"+name, "", &got); status != http.StatusOK || got != string(want) {
			t.Errorf("GET /api/%s without a token: %d, %d bytes; docs/%s has %d", name, status, len(got), name, len(want))
		}
	}
}
