package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

const alertRuleColumns = `sensor_id, metric, kind, enabled, min, max, k, warmup, after_seconds, resolve_after, updated_by, updated_at`

// AlertRules returns the stored alert rules of one sensor or, with
// sensorID "", of every sensor, ordered by sensor, metric and kind.
func (s *Store) AlertRules(ctx context.Context, sensorID string) ([]model.AlertRule, error) {
	var rows pgx.Rows
	var err error
	if sensorID == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules ORDER BY sensor_id, metric, kind`)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules WHERE sensor_id = $1
ORDER BY metric, kind`, sensorID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: alert rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanAlertRule)
	if err != nil {
		return nil, fmt.Errorf("store: alert rules: %w", err)
	}
	return out, nil
}

// ReplaceAlertRules replaces every stored rule of sensorID with rules (an
// empty list removes them all: the defaults apply again), recording user
// and at as their author, in one transaction. The rules' own SensorID,
// UpdatedBy and UpdatedAt are ignored. Rules must have been validated
// (model.ValidateAlertRules); the table's checks only catch the
// impossible. It returns the stored rules as AlertRules would.
func (s *Store) ReplaceAlertRules(ctx context.Context, sensorID, user string, at time.Time, rules []model.AlertRule) ([]model.AlertRule, error) {
	var out []model.AlertRule
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE sensor_id = $1`, sensorID); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, r := range rules {
			b.Queue(`INSERT INTO alert_rules (`+alertRuleColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				sensorID, r.Metric, r.Kind, r.Enabled, r.Min, r.Max, r.K, r.Warmup, r.AfterSeconds, r.ResolveAfter,
				user, alertTime(at))
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules WHERE sensor_id = $1
ORDER BY metric, kind`, sensorID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAlertRule)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: replace alert rules: %w", err)
	}
	return out, nil
}

func scanAlertRule(row pgx.CollectableRow) (model.AlertRule, error) {
	var r model.AlertRule
	err := row.Scan(&r.SensorID, &r.Metric, &r.Kind, &r.Enabled, &r.Min, &r.Max, &r.K, &r.Warmup,
		&r.AfterSeconds, &r.ResolveAfter, &r.UpdatedBy, &r.UpdatedAt)
	return r, err
}
