package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClaimRefusesASecondHolder(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	a, err := s.Claim(ctx, ClaimConfig{Label: "instance web-1"}, nil, "instance:web-1", "mqtt-client:watchroom-web-1")
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	// Another name on the same database is free.
	other, err := s.Claim(ctx, ClaimConfig{Label: "instance web-2"}, nil, "instance:web-2")
	if err != nil {
		t.Fatalf("claim of another name: %v", err)
	}
	other.Close()

	_, err = s.Claim(ctx, ClaimConfig{Label: "instance web-1"}, nil, "instance:web-2", "instance:web-1")
	var taken *ClaimTakenError
	if !errors.As(err, &taken) {
		t.Fatalf("second claim of instance:web-1: err = %v, want a *ClaimTakenError", err)
	}
	if taken.Name != "instance:web-1" || !strings.Contains(taken.Holder, a.token) || !strings.Contains(taken.Holder, "since") {
		t.Errorf("refusal = %+v, want the name and the holder's application name (token %s)", taken, a.token)
	}
	// The refused claim released what it had taken before the refusal.
	again, err := s.Claim(ctx, ClaimConfig{}, nil, "instance:web-2")
	if err != nil {
		t.Fatalf("instance:web-2 after a refused claim: %v", err)
	}
	again.Close()

	a.Close()
	b, err := s.Claim(ctx, ClaimConfig{}, nil, "instance:web-1", "mqtt-client:watchroom-web-1")
	if err != nil {
		t.Fatalf("claim after the holder closed: %v", err)
	}
	b.Close()
}

// A claim whose connection is cut takes its names again; one that finds
// them taken by another process meanwhile returns the refusal.
func TestClaimRunRetakesAfterLosingItsConnection(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	kill := func(c *Claim) {
		t.Helper()
		var ok bool
		if err := s.Pool().QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%' || $1 || '%'`, c.token).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate the claim's session: %v %v", ok, err)
		}
	}
	// holder reads who holds name from pg_locks, without claiming it: a
	// probe that claimed it could take it from under Run in the moment it
	// is free, and Run would rightly report it lost to another process.
	holder := func(name string) string {
		t.Helper()
		var app, addr string
		var since time.Time
		err := s.Pool().QueryRow(ctx, claimHolder, name).Scan(&app, &addr, &since)
		if errors.Is(err, pgx.ErrNoRows) {
			return ""
		}
		if err != nil {
			t.Fatalf("holder of %s: %v", name, err)
		}
		return app
	}

	a, err := s.Claim(ctx, ClaimConfig{CheckInterval: 20 * time.Millisecond}, nil, "instance:x")
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	var killed int
	if err := s.Pool().QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name LIKE '%' || $1 || '%'`, a.token).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	kill(a)
	// Run notices and takes the name again on a new session of its own;
	// bounded wait.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pid int
		err := s.Pool().QueryRow(ctx, `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE '%' || $1 || '%'`, a.token).Scan(&pid)
		if err == nil && pid != killed && strings.Contains(holder("instance:x"), a.token) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim was not taken again within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
	if h := holder("instance:x"); h != "" {
		t.Fatalf("name still held by %q after Run returned", h)
	}

	// Lost to another process: Run reports it.
	b, err := s.Claim(ctx, ClaimConfig{CheckInterval: time.Hour}, nil, "instance:y")
	if err != nil {
		t.Fatal(err)
	}
	conn := b.conn
	b.conn = nil // Run starts as after a lost connection
	release(ctx, conn)
	thief, err := s.Claim(ctx, ClaimConfig{}, nil, "instance:y")
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	b.every = 20 * time.Millisecond
	err = b.Run(ctx)
	var taken *ClaimTakenError
	if !errors.As(err, &taken) || taken.Name != "instance:y" || !strings.Contains(taken.Holder, thief.token) {
		t.Fatalf("Run = %v, want the name taken by the other claim (token %s)", err, thief.token)
	}
}

// Watch reports a lost connection instead of taking the name again.
func TestClaimWatchReportsALostConnection(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	c, err := s.Claim(ctx, ClaimConfig{Label: "alerts leader", CheckInterval: 20 * time.Millisecond}, nil, "alerts-detector")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx) }()
	if _, err := s.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%' || $1 || '%'`, c.token); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClaimLost) {
			t.Fatalf("Watch = %v, want ErrClaimLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not notice the lost connection within 10s")
	}
	other, err := s.Claim(ctx, ClaimConfig{}, nil, "alerts-detector")
	if err != nil {
		t.Fatalf("the name is not free after the holder's connection died: %v", err)
	}
	other.Close()

	c2, err := s.Claim(ctx, ClaimConfig{CheckInterval: 20 * time.Millisecond}, nil, "alerts-detector")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c2.Watch(wctx); err != nil {
		t.Fatalf("Watch after cancel = %v, want nil", err)
	}
}
