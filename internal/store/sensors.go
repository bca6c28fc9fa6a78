package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// Sensors returns the latest known state of every sensor metric, ordered by
// sensor id, then metric. The rows are maintained by InsertReadings.
func (s *Store) Sensors(ctx context.Context) ([]model.Sensor, error) {
	rows, err := s.pool.Query(ctx, `SELECT sensor_id, metric, unit, first_seen, last_seen, last_value
FROM sensors ORDER BY sensor_id, metric`)
	if err != nil {
		return nil, fmt.Errorf("store: sensors: %w", err)
	}
	var out []model.Sensor
	var x model.Sensor
	_, err = pgx.ForEachRow(rows, []any{&x.ID, &x.Metric, &x.Unit, &x.FirstSeen, &x.LastSeen, &x.LastValue}, func() error {
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: sensors: %w", err)
	}
	return out, nil
}
