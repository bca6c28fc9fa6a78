package store

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// The export format (docs/storage.md, "Export and import"), written by
// `watchroom export` and GET /api/export/readings and read by `watchroom
// import`: CSV with a header row naming the columns, or NDJSON with the
// same fields; ts in UTC with microseconds, the stored resolution, so that
// an import of an export stores the same keys.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// ExportColumns is the CSV header export writes; import needs the first
// four and takes them in any order.
var ExportColumns = []string{"sensor_id", "metric", "ts", "value", "unit"}

// ExportFrom and ExportTo bound an export that names no range: before and
// after any reading PostgreSQL can store.
var (
	ExportFrom = time.Unix(0, 0).AddDate(-2000, 0, 0)
	ExportTo   = time.Unix(0, 0).AddDate(8000, 0, 0)
)

// exportReadings streams stored readings in key order (sensor, metric, ts):
// on the partitioned table that is a merge of the partitions' primary key
// indexes, so rows come out as they are read and nothing is sorted in
// memory. Empty filters match everything; [$3, $4) bounds ts.
const exportReadings = `SELECT r.sensor_id, r.metric, coalesce(s.unit, ''), r.ts, r.value
FROM readings r LEFT JOIN sensors s ON s.sensor_id = r.sensor_id AND s.metric = r.metric
WHERE ($1 = '' OR r.sensor_id = $1) AND ($2 = '' OR r.metric = $2) AND r.ts >= $3 AND r.ts < $4
ORDER BY r.sensor_id, r.metric, r.ts`

// ExportReadings calls fn for each stored reading of sensorID and metric
// ("" for all) with from <= ts < to, in key order. Rows are streamed from
// the server as fn consumes them: memory stays constant whatever the
// number of rows. An error from fn stops the export and is returned.
// The export holds one pool connection until it ends.
func (s *Store) ExportReadings(ctx context.Context, sensorID, metric string, from, to time.Time, fn func(model.Reading) error) error {
	rows, err := s.pool.Query(ctx, exportReadings, sensorID, metric, from, to)
	if err != nil {
		return fmt.Errorf("store: export readings: %w", err)
	}
	var r model.Reading
	_, err = pgx.ForEachRow(rows, []any{&r.SensorID, &r.Metric, &r.Unit, &r.TS, &r.Value}, func() error { return fn(r) })
	if err != nil {
		return fmt.Errorf("store: export readings: %w", err)
	}
	return nil
}

// NewReadingEncoder returns a function that writes one reading to w in
// format (FormatCSV or FormatNDJSON); for CSV it writes the header at
// once. It does not buffer beyond a row: give it a bufio.Writer.
func NewReadingEncoder(w io.Writer, format string) (func(model.Reading) error, error) {
	switch format {
	case FormatNDJSON:
		enc := json.NewEncoder(w)
		return func(r model.Reading) error {
			return enc.Encode(exportRecord{SensorID: r.SensorID, Metric: r.Metric, TS: FormatExportTS(r.TS), Value: r.Value, Unit: r.Unit})
		}, nil
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(ExportColumns); err != nil {
			return nil, err
		}
		rec := make([]string, len(ExportColumns))
		return func(r model.Reading) error {
			rec[0], rec[1], rec[2], rec[3], rec[4] = r.SensorID, r.Metric, FormatExportTS(r.TS), strconv.FormatFloat(r.Value, 'g', -1, 64), r.Unit
			if err := cw.Write(rec); err != nil {
				return err
			}
			cw.Flush() // into w: cheap, and errors surface per row
			return cw.Error()
		}, nil
	}
	return nil, fmt.Errorf("format %q: want %s or %s", format, FormatCSV, FormatNDJSON)
}

type exportRecord struct {
	SensorID string  `json:"sensor_id"`
	Metric   string  `json:"metric"`
	TS       string  `json:"ts"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit,omitempty"`
}

// FormatExportTS is ts as export writes it: UTC, microseconds.
func FormatExportTS(t time.Time) string { return t.UTC().Format(model.ReadingTimeFormat) }
