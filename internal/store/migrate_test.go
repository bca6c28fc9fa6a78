package store

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/migrations"
)

func TestMigrate(t *testing.T) {
	tests := []struct {
		name       string
		concurrent int // Migrate calls running at once, after one call when 0
	}{
		{name: "twice in a row"},
		{name: "two instances at once", concurrent: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			ctx := testCtx(t)
			if tt.concurrent == 0 {
				for i := range 2 {
					if err := Migrate(ctx, url, nil); err != nil {
						t.Fatalf("Migrate #%d: %v", i+1, err)
					}
				}
			} else {
				errs := make(chan error, tt.concurrent)
				for range tt.concurrent {
					go func() { errs <- Migrate(ctx, url, nil) }()
				}
				for i := range tt.concurrent {
					if err := <-errs; err != nil {
						t.Errorf("concurrent Migrate #%d: %v", i+1, err)
					}
				}
			}
			assertSchema(t, ctx, url)
		})
	}
}

func assertSchema(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var applied int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied); err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	if applied != 1 {
		t.Errorf("migration 1 recorded %d times, want 1", applied)
	}
	for _, table := range []string{"sensors", "readings", "users", "commands", "settings", "deliveries"} {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+table).Scan(&ok); err != nil {
			t.Fatalf("look up table %s: %v", table, err)
		}
		if !ok {
			t.Errorf("table %s missing after Migrate", table)
		}
	}
}

func TestMigrateDownAndUpAgain(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	ctx := testCtx(t)
	if err := Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	connCfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	db := stdlib.OpenDB(*connCfg)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`).Scan(&left); err != nil {
		t.Fatalf("count tables: %v", err)
	}
	if left != 0 {
		t.Errorf("%d tables left after migrating down", left)
	}
	if err := Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate after down: %v", err)
	}
	assertSchema(t, ctx, dbURL)
}
