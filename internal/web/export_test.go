package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
)

func TestExportReadings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	insert(t, e, []model.Reading{
		{SensorID: "b-1", Metric: "temp", Unit: "C", TS: t0.Add(time.Second + 250*time.Microsecond), Value: 21.5},
		{SensorID: "a-1", Metric: "temp", Unit: "C", TS: t0, Value: 20},
		{SensorID: "a-1", Metric: "hum", Unit: "%", TS: t0, Value: 40},
		{SensorID: "a-1", Metric: "temp", Unit: "C", TS: t0.Add(time.Hour), Value: -1e-7},
	})
	op := e.token(t, "olga", model.RoleOperator)

	t.Run("access", func(t *testing.T) {
		wantError(t, e.do(t, http.MethodGet, "/api/export/readings", "", nil), http.StatusUnauthorized, "unauthorized", "Bearer")
		wantError(t, e.do(t, http.MethodGet, "/api/export/readings", e.token(t, "vic", model.RoleViewer), nil),
			http.StatusForbidden, "forbidden", "operator")
		if r := e.do(t, http.MethodGet, "/api/export/readings", e.token(t, "root", model.RoleAdmin), nil); r.status != http.StatusOK {
			t.Errorf("admin: %s", r)
		}
	})

	for _, tc := range []struct{ query, msg string }{
		{"format=xml", "format"},
		{"sensor_id=a%201", "sensor_id"},
		{"metric=%2F", "metric"},
		{"from=yesterday", "from"},
		{"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "before"},
	} {
		t.Run("bad "+tc.query, func(t *testing.T) {
			wantError(t, e.do(t, http.MethodGet, "/api/export/readings?"+tc.query, op, nil), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}

	for _, tc := range []struct{ name, query, ctype, disposition, body string }{
		{"all as csv", "", "text/csv", "readings.csv", `sensor_id,metric,ts,value,unit
a-1,hum,2026-03-01T00:00:00.000000Z,40,%
a-1,temp,2026-03-01T00:00:00.000000Z,20,C
a-1,temp,2026-03-01T01:00:00.000000Z,-1e-07,C
b-1,temp,2026-03-01T00:00:01.000250Z,21.5,C
`},
		{"sensor, metric and range as ndjson", "sensor_id=a-1&metric=temp&from=2026-03-01T00:00:00Z&to=2026-03-01T01:00:00Z&format=ndjson",
			"application/x-ndjson", "readings-a-1-temp.ndjson",
			`{"sensor_id":"a-1","metric":"temp","ts":"2026-03-01T00:00:00.000000Z","value":20,"unit":"C"}
`},
		{"to is exclusive, in Unix ms", "to=" + strconv.FormatInt(t0.UnixMilli(), 10), "text/csv", "readings.csv", "sensor_id,metric,ts,value,unit\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "/api/export/readings?"+tc.query, op, nil)
			if r.status != http.StatusOK {
				t.Fatalf("%s", r)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type = %q, want %s", ct, tc.ctype)
			}
			if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="`+tc.disposition+`"` {
				t.Errorf("Content-Disposition = %q, want file %s", cd, tc.disposition)
			}
			if string(r.body) != tc.body {
				t.Errorf("body:\n%s\nwant:\n%s", r.body, tc.body)
			}
		})
	}
}

// TestExportStreamsMillionsOfRows exports a few million readings over a real
// socket and samples the process's heap while it runs: the export must be
// streamed, so the heap stays far below the body's size. The figures are
// logged (go test -v -run ExportStreams ./internal/web).
func TestExportStreamsMillionsOfRows(t *testing.T) {
	const rows = 2_000_000
	st := newStore(t)
	// Export failures and stalls are logged: kept to explain a broken
	// download, and shown with the test's output.
	serverLog := &lockedBuffer{}
	e := newEnv(t, st, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, serverLog), &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	// No deadline that a slow machine could reach: under -race, with the
	// rest of the suite running beside it, the export can take minutes
	// (go test's -timeout still bounds it).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Straight into the table (no rollups, not the code under test), in
	// 2001: the default partition, which has its primary key like any day.
	start := time.Now()
	if _, err := st.Pool().Exec(ctx, `INSERT INTO readings (sensor_id, metric, ts, value)
		SELECT 'big-' || (i % 10), 'temp', timestamptz '2001-01-01 00:00:00+00' + (i / 10) * interval '1 second', i * 0.25
		FROM generate_series(0, $1 - 1) i`, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
	addr := serve(t, e.app)
	op := e.token(t, "olga", model.RoleOperator)
	get := func(query string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/export/readings"+query, nil)
		req.Header.Set("Authorization", "Bearer "+op)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	baseRSS := procStatusKB(t, "VmRSS")
	var peakHeap uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakHeap = max(peakHeap, m.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start = time.Now()
	resp := get("?format=csv")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var lines, size int
	var last string
	for {
		line, err := br.ReadSlice('\n')
		size += len(line)
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil {
			// What the server made of it: its log and the export results.
			results := map[string]float64{}
			for _, r := range []string{exportOK, exportBusy, exportGone, exportStalled, exportFailed} {
				results[r] = testutil.ToFloat64(e.app.export.results.WithLabelValues(r))
			}
			t.Fatalf("download broken after %d lines, %v: %v\nexport results on the server: %v\nserver log:\n%s",
				lines, time.Since(start).Round(time.Millisecond), err, results, serverLog.String())
		}
		lines++
		if lines == rows+1 {
			last = string(line)
		}
	}
	resp.Body.Close()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	peakRSS := procStatusKB(t, "VmHWM")
	if lines != rows+1 {
		t.Errorf("%d lines, want the header and %d readings", lines, rows)
	}
	// The last reading in key order: sensor big-9, the largest i.
	lastTS := time.Date(2001, 1, 1, 0, 0, (rows-1)/10, 0, time.UTC).Format("2006-01-02T15:04:05.000000Z")
	if want := fmt.Sprintf("big-9,temp,%s,%v,\n", lastTS, float64(rows-1)*0.25); last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
	growth := int64(peakHeap) - int64(base.HeapAlloc)
	t.Logf("exported %d rows, %.1f MB, in %v (%.0f rows/s); heap before %.1f MB, peak %.1f MB (+%.1f MB); RSS before %d MB, high-water mark %d MB",
		rows, float64(size)/1e6, elapsed.Round(time.Millisecond), float64(rows)/elapsed.Seconds(),
		float64(base.HeapAlloc)/1e6, float64(peakHeap)/1e6, float64(growth)/1e6, baseRSS/1024, peakRSS/1024)
	// Generous, and independent of speed: a buffered export would hold
	// the whole body (about 100 MB) at least once.
	if growth > 64<<20 {
		t.Errorf("heap grew by %.1f MB while exporting %.1f MB: not streamed", float64(growth)/1e6, float64(size)/1e6)
	}

	// A client that goes away, and two that stop reading, hold no slot for
	// long: the first frees its slot when the server's write fails, the
	// others while they hold theirs make a third export wait its turn.
	t.Run("slots", func(t *testing.T) {
		held := []*http.Response{get("?sensor_id=big-1"), get("?sensor_id=big-2")}
		for _, r := range held {
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
		}
		busy := get("?sensor_id=big-3")
		if busy.StatusCode != http.StatusTooManyRequests {
			t.Errorf("a third export at once: status %d, want 429", busy.StatusCode)
		}
		busy.Body.Close()
		for _, r := range held {
			_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
			r.Body.Close() // gone: the transport closes the connection mid-body
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := get("?sensor_id=big-0&to=2001-01-01T00:00:10Z")
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				if n := strings.Count(string(b), "\n"); n != 11 {
					t.Errorf("small export after the slots were freed: %d lines, want 11", n)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slots not freed 10 s after their clients left: %d %s", r.StatusCode, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestExportStallCountsOnlyTheClient: the stall timer runs while the
// server holds bytes for the client, not while it waits for the database,
// so a slow query (a loaded machine) is not taken for a client that stopped
// reading; a client that stops reading is still cut off.
func TestExportStallCountsOnlyTheClient(t *testing.T) {
	const stallAfter = 200 * time.Millisecond
	newBody := func() (*exportBody, *io.PipeWriter) {
		pr, pw := io.Pipe()
		b := &exportBody{pr: pr, br: bufio.NewReaderSize(pr, exportBuffer), cancel: func() {}}
		b.startTimers(stallAfter, time.Hour)
		return b, pw
	}

	b, pw := newBody()
	go func() {
		for range 3 {
			time.Sleep(3 * stallAfter) // the database is slow
			if _, err := pw.Write([]byte("row\n")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	got, err := io.ReadAll(b) // the client reads as fast as it comes
	b.Close()
	if err != nil || string(got) != "row\nrow\nrow\n" {
		t.Errorf("slow query: read %q, %v; want the three rows", got, err)
	}

	b, pw = newBody()
	go func() { _, _ = pw.Write([]byte("row\n")) }()
	buf := make([]byte, 64)
	if n, err := b.Read(buf); n != 4 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	// The client takes nothing more: the timer fires, the next read fails.
	deadline := time.Now().Add(time.Minute)
	for b.cause() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := b.Read(buf); err == nil || !errors.Is(b.cause(), errExportStalled) {
		t.Errorf("stalled client: read error %v, cause %v; want an error, cause %v", err, b.cause(), errExportStalled)
	}
	b.Close()
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes (a log).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// procStatusKB reads a field of /proc/self/status in kB (0 where there is none).
func procStatusKB(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
