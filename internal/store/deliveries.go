package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// InsertDeliveries queues each delivery for its recipient (User) in one
// statement and returns them with their IDs set. IDs increase with
// insertion order, so a client can order and deduplicate deliveries by id.
// Data must be non-empty JSON; an empty Ref is stored as NULL. Ref and Data
// are stored as jsonb: they come back with equal JSON values, not
// necessarily identical bytes.
func (s *Store) InsertDeliveries(ctx context.Context, ds []model.Delivery) ([]model.Delivery, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	recipients := make([]string, len(ds))
	types := make([]string, len(ds))
	refs := make([][]byte, len(ds))
	data := make([][]byte, len(ds))
	for i, d := range ds {
		if len(d.Data) == 0 {
			return nil, errors.New("store: insert deliveries: empty data")
		}
		recipients[i], types[i], data[i] = d.User, d.Type, d.Data
		if len(d.Ref) > 0 {
			refs[i] = d.Ref // nil stays NULL, not an empty (invalid) JSON text
		}
	}
	// Rows are inserted in input order, so the ids, which a sequence hands
	// out in that order, sorted ascending, line up with the input.
	rows, err := s.pool.Query(ctx, `INSERT INTO deliveries (recipient, type, ref, data)
SELECT r, t, f, d FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[]) WITH ORDINALITY AS u(r, t, f, d, n)
ORDER BY n
RETURNING id`, recipients, types, refs, data)
	if err != nil {
		return nil, fmt.Errorf("store: insert deliveries: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: insert deliveries: %w", err)
	}
	if len(ids) != len(ds) {
		return nil, fmt.Errorf("store: insert deliveries: %d ids for %d rows", len(ids), len(ds))
	}
	slices.Sort(ids)
	out := make([]model.Delivery, len(ds))
	for i, d := range ds {
		d.ID = ids[i]
		if len(d.Ref) == 0 {
			d.Ref = nil
		}
		out[i] = d
	}
	return out, nil
}

// AckDeliveries deletes the deliveries ids of recipient, in one
// statement, and returns the ids it deleted; the others were already
// acked, or are someone else's.
func (s *Store) AckDeliveries(ctx context.Context, recipient string, ids []int64) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM deliveries WHERE recipient = $1 AND id = ANY($2) RETURNING id`, recipient, ids)
	if err != nil {
		return nil, fmt.Errorf("store: ack deliveries: %w", err)
	}
	acked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: ack deliveries: %w", err)
	}
	return acked, nil
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
