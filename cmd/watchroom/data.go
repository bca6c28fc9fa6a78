package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

// The export/import format (docs/storage.md, "Export and import"): CSV with a
// header row naming the columns sensor_id, metric, ts, value and optionally
// unit, in any order; or NDJSON, one object a line with the same fields.
// ts is RFC 3339 (export writes UTC with microseconds), value a finite
// number.

// importBatch is the number of readings per InsertReadings call, the ingest
// batch writer's default order of size.
const importBatch = 5000

// maxRejectLines bounds the rejected lines import prints; the rest are
// only counted.
const maxRejectLines = 100

func runExport(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURL(fs, env)
	sensor := fs.String("sensor-id", "", "only this sensor (default: all)")
	metric := fs.String("metric", "", "only this metric (default: all)")
	fromS := fs.String("from", "", "first ts, RFC 3339 (default: the beginning)")
	toS := fs.String("to", "", "ts to stop before, RFC 3339 (default: no end)")
	format := fs.String("format", "csv", "csv or ndjson")
	out := fs.String("out", "-", "file to write (-: standard output)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *dbURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required")
	}
	from, to := store.ExportFrom, store.ExportTo
	for _, p := range []struct {
		s string
		t *time.Time
	}{{*fromS, &from}, {*toS, &to}} {
		if p.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.s)
		if err != nil {
			return fmt.Errorf("export: --from/--to want RFC 3339 times: %w", err)
		}
		*p.t = t
	}
	if *format != store.FormatCSV && *format != store.FormatNDJSON {
		return fmt.Errorf("export: --format %q: want csv or ndjson", *format)
	}
	st, err := store.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc, err := store.NewReadingEncoder(bw, *format)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	n := 0
	err = st.ExportReadings(ctx, *sensor, *metric, from, to, func(r model.Reading) error {
		n++
		return enc(r)
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported %d readings\n", n)
	return nil
}

func runImport(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURL(fs, env)
	file := fs.String("file", "", "file to read (-: standard input); CSV with a header row, or NDJSON")
	format := fs.String("format", "", "csv or ndjson (default: ndjson when the file starts with {, else csv)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *dbURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required")
	}
	if *file == "" {
		return errors.New("import: --file is required")
	}
	var in io.Reader = os.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in = f
	}
	if err := store.Migrate(ctx, *dbURL, nil); err != nil {
		return err
	}
	st, err := store.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	var sum importSummary
	batch := make([]model.Reading, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// The ingest path: dedup (a second import is a no-op) and rollups.
		res, err := st.InsertReadings(ctx, batch)
		if err != nil {
			return err
		}
		sum.inserted += len(res.Fresh)
		sum.duplicates += res.Duplicates
		sum.conflicts += len(res.Conflicts)
		for _, r := range res.PastRetention {
			// Not invalid, so no line number: older than the raw horizon,
			// in a minute or hour whose raw readings are gone.
			sum.pastRetention++
			if sum.pastRetention <= maxRejectLines {
				fmt.Fprintf(stderr, "not stored, past raw retention (horizon %s): %s %s %s\n",
					store.FormatExportTS(res.RawHorizon), r.SensorID, r.Metric, store.FormatExportTS(r.TS))
			}
		}
		batch = batch[:0]
		return nil
	}
	err = decodeReadings(bufio.NewReaderSize(in, 64<<10), *format, func(r model.Reading) error {
		batch = append(batch, r)
		if len(batch) == importBatch {
			return flush()
		}
		return nil
	}, func(line int, err error) {
		sum.rejected++
		if sum.rejected <= maxRejectLines {
			fmt.Fprintf(stderr, "line %d: %v\n", line, err)
		}
	})
	if err == nil {
		err = flush()
	}
	fmt.Fprintf(stdout, "imported %d readings; %d duplicates, %d conflicts (stored value kept), %d past raw retention (not stored), %d lines rejected\n",
		sum.inserted, sum.duplicates, sum.conflicts, sum.pastRetention, sum.rejected)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if sum.rejected > 0 {
		return fmt.Errorf("import: %d lines rejected", sum.rejected)
	}
	return nil
}

type importSummary struct{ inserted, duplicates, conflicts, pastRetention, rejected int }

// decodeReadings reads CSV or NDJSON (format "" sniffs: ndjson when the
// first non-space byte is '{'), calling fn for each valid reading and
// reject with the line number of each invalid one. It stops at the first
// error of fn or of reading the input.
func decodeReadings(in *bufio.Reader, format string, fn func(model.Reading) error, reject func(line int, err error)) error {
	if format == "" {
		format = "csv"
		for {
			b, err := in.Peek(1)
			if err != nil {
				return nil // empty input
			}
			if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
				_, _ = in.ReadByte()
				continue
			}
			if b[0] == '{' {
				format = "ndjson"
			}
			break
		}
	}
	switch format {
	case "ndjson":
		return decodeNDJSON(in, fn, reject)
	case "csv":
		return decodeCSV(in, fn, reject)
	}
	return fmt.Errorf("format %q: want csv or ndjson", format)
}

func decodeNDJSON(in *bufio.Reader, fn func(model.Reading) error, reject func(int, error)) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rec struct {
			SensorID *string  `json:"sensor_id"`
			Metric   *string  `json:"metric"`
			TS       *string  `json:"ts"`
			Value    *float64 `json:"value"`
			Unit     string   `json:"unit"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			reject(line, err)
			continue
		}
		if rec.SensorID == nil || rec.Metric == nil || rec.TS == nil || rec.Value == nil {
			reject(line, errors.New("sensor_id, metric, ts and value are required"))
			continue
		}
		r, err := parseReading(*rec.SensorID, *rec.Metric, *rec.TS, strconv.FormatFloat(*rec.Value, 'g', -1, 64), rec.Unit)
		if err != nil {
			reject(line, err)
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

func decodeCSV(in io.Reader, fn func(model.Reading) error, reject func(int, error)) error {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1 // checked per line, so a short line is rejected, not fatal
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("line 1: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, c := range store.ExportColumns[:4] {
		if _, ok := col[c]; !ok {
			return fmt.Errorf("line 1: header names no %q column (want %s, unit optional, any order)", c, strings.Join(store.ExportColumns, ","))
		}
	}
	unit, hasUnit := col["unit"]
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				reject(pe.StartLine, pe.Err)
				continue
			}
			return err
		}
		line, _ := cr.FieldPos(0) // only after a record was read: it panics otherwise
		if len(rec) != len(header) {
			reject(line, fmt.Errorf("%d fields, header has %d", len(rec), len(header)))
			continue
		}
		u := ""
		if hasUnit {
			u = rec[unit]
		}
		r, err := parseReading(rec[col["sensor_id"]], rec[col["metric"]], rec[col["ts"]], rec[col["value"]], u)
		if err != nil {
			reject(line, err)
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// parseReading checks one record as ingest checks a message: valid ids, an
// explicit RFC 3339 ts, a finite value.
func parseReading(sensor, metric, ts, value, unit string) (model.Reading, error) {
	if err := model.ValidID(sensor); err != nil {
		return model.Reading{}, fmt.Errorf("sensor_id: %w", err)
	}
	if err := model.ValidID(metric); err != nil {
		return model.Reading{}, fmt.Errorf("metric: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(ts))
	if err != nil {
		return model.Reading{}, fmt.Errorf("ts: want RFC 3339: %w", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return model.Reading{}, fmt.Errorf("value %q: want a finite number", value)
	}
	if len(unit) > model.MaxIDLen || slices.ContainsFunc([]byte(unit), func(c byte) bool { return c < 0x20 }) {
		return model.Reading{}, errors.New("unit: too long or holds control characters")
	}
	return model.Reading{SensorID: sensor, Metric: metric, Unit: unit, TS: t.UTC().Truncate(time.Microsecond), Value: v}, nil
}
