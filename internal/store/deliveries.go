package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// InsertDelivery queues d for its recipient (d.User) and returns it with ID
// set. IDs increase with insertion order, so a client can order and
// deduplicate deliveries by id. Data must be non-empty JSON; an empty Ref is
// stored as NULL. Ref and Data are stored as jsonb: they come back with
// equal JSON values, not necessarily identical bytes.
func (s *Store) InsertDelivery(ctx context.Context, d model.Delivery) (model.Delivery, error) {
	if len(d.Data) == 0 {
		return model.Delivery{}, errors.New("store: insert delivery: empty data")
	}
	if len(d.Ref) == 0 {
		d.Ref = nil // NULL, not an empty (invalid) JSON text
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO deliveries (recipient, type, ref, data) VALUES ($1, $2, $3, $4) RETURNING id`,
		d.User, d.Type, d.Ref, d.Data).Scan(&d.ID)
	if err != nil {
		return model.Delivery{}, fmt.Errorf("store: insert delivery: %w", err)
	}
	return d, nil
}

// AckDelivery deletes the delivery id of recipient. It returns an error
// matching ErrNotFound when recipient has no such delivery: already acked,
// or someone else's.
func (s *Store) AckDelivery(ctx context.Context, recipient string, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM deliveries WHERE recipient = $1 AND id = $2`, recipient, id)
	if err != nil {
		return fmt.Errorf("store: ack delivery: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: ack delivery: %w", ErrNotFound)
	}
	return nil
}

// PendingDeliveries returns up to limit unacknowledged deliveries of
// recipient, oldest first. limit must be positive.
func (s *Store) PendingDeliveries(ctx context.Context, recipient string, limit int) ([]model.Delivery, error) {
	if limit <= 0 {
		return nil, errors.New("store: pending deliveries: limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT id, recipient, type, ref, data FROM deliveries
WHERE recipient = $1 ORDER BY id LIMIT $2`, recipient, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.Delivery, error) {
		var d model.Delivery
		err := row.Scan(&d.ID, &d.User, &d.Type, (*[]byte)(&d.Ref), (*[]byte)(&d.Data))
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending deliveries: %w", err)
	}
	return out, nil
}
