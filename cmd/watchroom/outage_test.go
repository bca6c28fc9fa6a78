package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/pgtest"
)

// setConnections cuts (allow=false) or restores the test database for
// everyone: new connections are refused and open ones are terminated, as
// when PostgreSQL goes away.
func setConnections(t *testing.T, dbURL string, allow bool) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{name}.Sanitize(), allow)); err != nil {
		t.Fatalf("alter database: %v", err)
	}
	if !allow {
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			t.Fatalf("terminate backends: %v", err)
		}
	}
}

func TestDatabaseOutageLosesNothing(t *testing.T) {
	e := setup(t)
	ws := connect(t, e.srv.addr, e.token)
	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/s-db/level", "1")
	ws.nextOf("reading", 10*time.Second)

	setConnections(t, e.db, false)
	restored := false
	t.Cleanup(func() {
		if !restored {
			setConnections(t, e.db, true)
		}
	})
	const n = 200
	base := time.Now().Add(-time.Hour).UTC()
	for i := 0; i < n; i++ {
		publish(t, pub, "sensors/s-db/level", fmt.Sprintf(`{"value":%d,"ts":%q}`, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	// While the database is away nothing is stored, so nothing is pushed.
	select {
	case m := <-ws.msgs:
		if m.Type == "reading" {
			t.Fatalf("a reading was pushed while the database was down: %s", m.Data)
		}
	case <-time.After(time.Second):
	}
	setConnections(t, e.db, true)
	restored = true
	total, distinct := waitForCount(t, e.db, "s-db", n+1, 30*time.Second)
	if total != n+1 || distinct != n+1 {
		t.Fatalf("after the outage: %d readings (%d distinct), want %d", total, distinct, n+1)
	}
	for i := 0; i < n; i++ {
		ws.nextOf("reading", 10*time.Second)
	}
}
