// Package pgtest gives each integration test a freshly created PostgreSQL
// database and drops it when the test ends. Tests never skip when the server
// is unreachable: they fail and say how to start it.
//
// The server is found through WATCHROOM_TEST_DATABASE_URL, by default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminURL is the maintenance database used to create and drop test
// databases when WATCHROOM_TEST_DATABASE_URL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const howToStart = "start PostgreSQL with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` " +
	"(or `make services`), or point WATCHROOM_TEST_DATABASE_URL at a server where this role may create databases"

// AdminURL returns the URL of the maintenance database.
func AdminURL() string {
	if u := os.Getenv("WATCHROOM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabase creates an empty database with a random name and returns its
// URL. The database is dropped, with any connections still open to it, when
// the test and its subtests end.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL unreachable at %s: %v\n%s", redact(admin), err, howToStart)
	}
	defer conn.Close(context.Background())

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "watchroom_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("pgtest: parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
