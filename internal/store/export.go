package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
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
