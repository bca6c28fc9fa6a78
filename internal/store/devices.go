package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrDeviceExists is returned (wrapped) by AddDevice when the id belongs to
// a device that is registered and not revoked.
var ErrDeviceExists = errors.New("store: device already registered")

// Device is a row of the devices table: an MQTT identity. SecretHash is a
// Mosquitto "$7$" PBKDF2-SHA512 hash, never the secret itself; it still must
// not be logged or sent to browsers.
type Device struct {
	ID         string
	SecretHash string
	CreatedBy  string
	CreatedAt  time.Time
	RevokedAt  *time.Time // nil while the device may connect
}

// Active reports whether the device may connect.
func (d Device) Active() bool { return d.RevokedAt == nil }

// AddDevice registers id with secretHash (hashing is the caller's job). A
// revoked device of the same id is replaced, with a new secret and creation
// time; an active one is not: the error then matches ErrDeviceExists.
func (s *Store) AddDevice(ctx context.Context, id, secretHash, createdBy string) error {
	// The WHERE of DO UPDATE makes the conflict with an active row a no-op,
	// which RETURNING reports as no row: one statement, no race between a
	// check and the insert.
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO devices (id, secret_hash, created_by) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, created_by = excluded.created_by,
    created_at = now(), revoked_at = NULL
WHERE devices.revoked_at IS NOT NULL
RETURNING id`, id, secretHash, createdBy).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: add device %q: %w", id, ErrDeviceExists)
	}
	if err != nil {
		return fmt.Errorf("store: add device: %w", err)
	}
	return nil
}

// RevokeDevice marks the device revoked, so it can no longer connect. The
// error matches ErrNotFound when no active device has that id.
func (s *Store) RevokeDevice(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("store: revoke device: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: revoke device: %w", ErrNotFound)
	}
	return nil
}

// Devices returns every device, revoked ones included, ordered by id.
func (s *Store) Devices(ctx context.Context) ([]Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, secret_hash, created_by, created_at, revoked_at FROM devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	var out []Device
	var d Device
	_, err = pgx.ForEachRow(rows, []any{&d.ID, &d.SecretHash, &d.CreatedBy, &d.CreatedAt, &d.RevokedAt}, func() error {
		out = append(out, d)
		d.RevokedAt = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	return out, nil
}

// DeviceSecretHash returns the secret hash of the active device id, or an
// error matching ErrNotFound when there is none (unknown or revoked).
func (s *Store) DeviceSecretHash(ctx context.Context, id string) (string, error) {
	var h string
	err := s.pool.QueryRow(ctx, `SELECT secret_hash FROM devices WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&h)
	if err != nil {
		return "", notFound("device secret hash", err)
	}
	return h, nil
}

// DeviceRegistered reports whether id is a registered device that is not
// revoked. It is one primary-key lookup; callers on a hot path (ingest in
// registered-only mode) may still want to cache it briefly.
func (s *Store) DeviceRegistered(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1 AND revoked_at IS NULL)`, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: device registered: %w", err)
	}
	return ok, nil
}

// DevicesRevokedSince returns the ids of devices revoked after since and the
// latest revocation time among them (since when there is none). Times are
// the database's clock: pass back the returned time, not the caller's, so
// that clock skew cannot skip a revocation. The broker polls it to
// disconnect devices revoked by another process.
func (s *Store) DevicesRevokedSince(ctx context.Context, since time.Time) ([]string, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, revoked_at FROM devices WHERE revoked_at > $1 ORDER BY revoked_at`, since)
	if err != nil {
		return nil, since, fmt.Errorf("store: devices revoked since: %w", err)
	}
	var ids []string
	var id string
	var at time.Time
	latest := since
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		ids = append(ids, id)
		latest = at
		return nil
	})
	if err != nil {
		return nil, since, fmt.Errorf("store: devices revoked since: %w", err)
	}
	return ids, latest, nil
}
