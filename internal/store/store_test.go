package store

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/pgtest"
)

// newStore returns a Store on a fresh, migrated database that is dropped when
// the test ends.
func newStore(tb testing.TB) *Store {
	tb.Helper()
	dbURL := pgtest.NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, dbURL, nil); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	s, err := Open(ctx, dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close) // registered after pgtest's drop, so it runs first
	return s
}

// testCtx is a context bounded in time, so a hung query fails the test
// instead of hanging it.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenPingPool(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if got := s.Pool().Config().MaxConns; got != defaultMaxConns {
		t.Errorf("MaxConns = %d, want %d", got, defaultMaxConns)
	}
}

func TestOpenAndMigrateErrors(t *testing.T) {
	ctx := testCtx(t)
	missing, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatalf("parse admin URL: %v", err)
	}
	missing.Path = "/watchroom_no_such_database"
	tests := []struct {
		name string
		url  string
	}{
		{"unparsable URL", "postgres://watch:s3cret-pw@127.0.0.1:notaport/db"},
		{"no such database", missing.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("Open error leaks the password: %v", err)
			}
			err = Migrate(ctx, tt.url, nil)
			if err == nil {
				t.Fatal("Migrate succeeded, want an error")
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("Migrate error leaks the password: %v", err)
			}
		})
	}
}

func TestErrNotFoundIsWrapped(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	_, err := s.User(ctx, "nobody")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.HasPrefix(err.Error(), "store: user: ") {
		t.Errorf("err = %q, want the operation as context", err)
	}
}
