package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/watchroom/watchroom/internal/model"
)

// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
// It is model.ErrNotFound, so packages that do not import store match it
// with errors.Is(err, model.ErrNotFound).
var ErrNotFound = model.ErrNotFound

// defaultMaxConns bounds the pool when the URL does not set pool_max_conns.
// The ingest batch writers need one or two connections, the web handlers a
// few more; a 2-core PostgreSQL gains nothing from more concurrent queries.
const defaultMaxConns = 8

// Store is the PostgreSQL database. Create it with Open; it is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to databaseURL (a postgres:// URL or key=value string; the
// pgxpool pool_* parameters are honoured) and checks the connection with a
// ping. It does not apply migrations: call Migrate first.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("store: open: invalid database URL")
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	cfg.AfterConnect = afterConnect
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open: ping: %w", err)
	}
	return &Store{pool: pool}, nil
}

// afterConnect prepares each new pool connection:
//
//   - timestamptz values are scanned in UTC, so results do not depend on the
//     server process's local time zone;
//   - the session's temporary staging table for InsertReadings is created
//     once here rather than with CREATE TEMP TABLE IF NOT EXISTS in every
//     batch, which would cost a round trip and a notice per batch. ON COMMIT
//     DELETE ROWS empties it at the end of every transaction, committed or
//     not, so a failed batch leaves nothing behind for the next one.
func afterConnect(ctx context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	if _, err := conn.Exec(ctx, createReadingsIn); err != nil {
		return fmt.Errorf("store: create staging table: %w", err)
	}
	return nil
}

// Close closes every connection of the pool. It waits for connections in
// use to be returned.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers; for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Pool returns the underlying pool, for metrics (Stat) and for tests. Code
// outside this package should not run SQL through it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// notFound maps pgx.ErrNoRows to ErrNotFound and wraps other errors.
func notFound(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
