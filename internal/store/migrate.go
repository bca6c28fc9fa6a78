package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/watchroom/watchroom/migrations"
)

// Migrate applies every pending migration of the migrations package to the
// database at databaseURL and returns when the schema is current. Each
// applied migration is logged to log (nil: not logged).
//
// The migrations run under a PostgreSQL session-level advisory lock, so
// several instances started together do not race: one applies the
// migrations, the others wait for the lock (polling once a second, for up
// to five minutes) and then find nothing left to do.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	connCfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return errors.New("store: migrate: invalid database URL")
	}
	db := stdlib.OpenDB(*connCfg)
	defer db.Close()

	// goose's default poll interval is 5 s; 1 s (its minimum) keeps a second
	// instance from idling long after the first one has finished.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true), // SQL files only, no package-level Go migrations
	)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range results {
		if log == nil {
			break
		}
		log.InfoContext(ctx, "applied migration",
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}
