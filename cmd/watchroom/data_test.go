package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

func newDataDB(t *testing.T, ctx context.Context) (string, *store.Store) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	if err := store.Migrate(ctx, url, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(st.Close)
	return url, st
}

func runData(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(ctx, args, nil, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestExportImportRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srcURL, src := newDataDB(t, ctx)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var rs []model.Reading
	for i := range 3000 {
		rs = append(rs, model.Reading{SensorID: fmt.Sprintf("rt-%d", i%3), Metric: []string{"temp", "hum"}[i%2], Unit: "C",
			TS: t0.Add(time.Duration(i)*time.Second + 123456*time.Nanosecond).Truncate(time.Microsecond), Value: float64(i) / 7})
	}
	if _, err := src.InsertReadings(ctx, rs); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	for _, format := range []string{"csv", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "out."+format)
			if _, _, err := runData(t, ctx, "export", "--database-url", srcURL, "--format", format, "--out", file); err != nil {
				t.Fatalf("export: %v", err)
			}
			dstURL, dst := newDataDB(t, ctx)
			out, stderr, err := runData(t, ctx, "import", "--database-url", dstURL, "--file", file)
			if err != nil || !strings.Contains(out, "imported 3000 readings; 0 duplicates") {
				t.Fatalf("import: %v\n%s%s", err, out, stderr)
			}
			// Idempotent: a second import inserts nothing and counts nothing twice.
			out, _, err = runData(t, ctx, "import", "--database-url", dstURL, "--file", file)
			if err != nil || !strings.Contains(out, "imported 0 readings; 3000 duplicates") {
				t.Fatalf("import again: %v\n%s", err, out)
			}
			again := filepath.Join(dir, "again."+format)
			if _, _, err := runData(t, ctx, "export", "--database-url", dstURL, "--format", format, "--out", again); err != nil {
				t.Fatalf("export again: %v", err)
			}
			a, _ := os.ReadFile(file)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) || len(a) == 0 {
				t.Errorf("export of the import differs from the export (%d vs %d bytes)", len(a), len(b))
			}
			const rollups = `SELECT count(*), sum(count), sum(sum) FROM readings_1h`
			var n1, c1, n2, c2 int64
			var s1, s2 float64
			if err := src.Pool().QueryRow(ctx, rollups).Scan(&n1, &c1, &s1); err != nil {
				t.Fatal(err)
			}
			if err := dst.Pool().QueryRow(ctx, rollups).Scan(&n2, &c2, &s2); err != nil {
				t.Fatal(err)
			}
			if n1 != n2 || c1 != c2 || c2 != 3000 || s1-s2 > 1e-6 || s2-s1 > 1e-6 {
				t.Errorf("hourly rollups: source %d buckets, %d readings, sum %v; imported %d, %d, %v", n1, c1, s1, n2, c2, s2)
			}
		})
	}
}

// TestImportPastRawRetention imports readings whose raw day retention has
// dropped: they are counted in the rollups already, so they are reported,
// not stored, and the rollups keep their count.
func TestImportPastRawRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url, st := newDataDB(t, ctx)
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.EnsurePartitions(ctx, day0, 1, day0); err != nil {
		t.Fatalf("EnsurePartitions: %v", err)
	}
	if _, err := st.InsertReadings(ctx, []model.Reading{{SensorID: "old", Metric: "temp", TS: day0.Add(time.Hour), Value: 1}}); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
	if _, err := st.DropRaw(ctx, day0.AddDate(0, 0, 40), day0.AddDate(0, 0, 10), 0); err != nil {
		t.Fatalf("DropRaw: %v", err)
	}
	file := filepath.Join(t.TempDir(), "old.csv")
	if err := os.WriteFile(file, []byte("sensor_id,metric,ts,value\nold,temp,2026-03-01T01:00:00Z,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runData(t, ctx, "import", "--database-url", url, "--file", file)
	if err != nil || !strings.Contains(out, "imported 0 readings; 0 duplicates, 0 conflicts (stored value kept), 1 past raw retention (not stored)") ||
		!strings.Contains(stderr, "old temp 2026-03-01T01:00:00.000000Z") {
		t.Errorf("import: %v\n%s%s", err, out, stderr)
	}
	var n int64
	if err := st.Pool().QueryRow(ctx, `SELECT sum(count) FROM readings_1h WHERE sensor_id = 'old'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("hourly rollup counts %d (%v), want 1", n, err)
	}
}

func TestDecodeReadingsRejects(t *testing.T) {
	tests := []struct {
		name, in   string
		wantOK     int
		wantReject []int // line numbers
		wantErr    bool
	}{
		{name: "csv any order, unit optional", in: "value,ts,metric,sensor_id\n1.5,2026-01-01T00:00:00Z,temp,s1\n", wantOK: 1},
		{name: "csv bad lines", in: "sensor_id,metric,ts,value,unit\ns1,temp,2026-01-01T00:00:00Z,1,C\ns1,temp,yesterday,1,C\ns 1,temp,2026-01-01T00:00:01Z,1,C\ns1,temp,2026-01-01T00:00:02Z,NaN,C\ns1,temp\n",
			wantOK: 1, wantReject: []int{3, 4, 5, 6}},
		{name: "csv header without value", in: "sensor_id,metric,ts\n", wantErr: true},
		{name: "ndjson", in: `{"sensor_id":"s1","metric":"temp","ts":"2026-01-01T00:00:00.5+02:00","value":2}` + "\n\n" + `{"sensor_id":"s1","metric":"temp","value":2}` + "\nnot json\n",
			wantOK: 1, wantReject: []int{3, 4}},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ok int
			var rejected []int
			err := decodeReadings(bufio.NewReader(strings.NewReader(tt.in)), "", func(model.Reading) error { ok++; return nil },
				func(line int, err error) { rejected = append(rejected, line) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if ok != tt.wantOK || fmt.Sprint(rejected) != fmt.Sprint(tt.wantReject) && len(tt.wantReject)+len(rejected) > 0 {
				t.Errorf("%d readings, rejected lines %v; want %d, %v", ok, rejected, tt.wantOK, tt.wantReject)
			}
		})
	}
}

func FuzzDecodeReadings(f *testing.F) {
	f.Add("sensor_id,metric,ts,value\ns1,temp,2026-01-01T00:00:00Z,1\n")
	f.Add(`{"sensor_id":"s1","metric":"temp","ts":"2026-01-01T00:00:00Z","value":1}` + "\n")
	f.Add("value,\"ts\nx\",metric\n\"")
	f.Fuzz(func(t *testing.T, in string) {
		_ = decodeReadings(bufio.NewReader(strings.NewReader(in)), "", func(r model.Reading) error {
			if model.ValidID(r.SensorID) != nil || model.ValidID(r.Metric) != nil || r.Value != r.Value {
				t.Fatalf("invalid reading accepted: %+v", r)
			}
			return nil
		}, func(int, error) {})
	})
}
