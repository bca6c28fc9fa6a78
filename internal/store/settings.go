package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Setting returns the value stored under key, or an error matching
// ErrNotFound. Values may be secrets: callers must not log them.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", notFound("setting", err)
	}
	return v, nil
}

// SettingOrInit stores value under key unless key already has a value, and
// returns the stored value. Instances starting together, each proposing its
// own value (say, a freshly generated secret), all get the same one.
func (s *Store) SettingOrInit(ctx context.Context, key, value string) (string, error) {
	// Insert and read back as two statements, not one: a statement's
	// snapshot predates a concurrent insert that ON CONFLICT waited for, so
	// a single "INSERT ... ON CONFLICT DO NOTHING; UNION SELECT" could see
	// neither row. The second statement takes a new snapshot that sees the
	// winner's row. Settings are never deleted, so the loop is a guard, not a
	// retry policy.
	for range 3 {
		var v string
		err := s.pool.QueryRow(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO NOTHING RETURNING value`, key, value).Scan(&v)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("store: setting or init: %w", err)
		}
		v, err = s.Setting(ctx, key)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("store: setting or init: %w", err)
		}
	}
	return "", fmt.Errorf("store: setting or init: key %q keeps vanishing", key)
}

// PutSetting stores value under key, replacing any value it had.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("store: put setting: %w", err)
	}
	return nil
}
