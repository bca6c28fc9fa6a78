package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkProfile is `make bench`: the standard profile of `watchroom
// bench` against a server started here, exactly as `watchroom serve`
// with its defaults, its own PostgreSQL database and a private Mosquitto
// (internal/mqtttest limits). The per-user and per-address connection
// caps are raised, since every connection comes from one address and one
// user. It prints the table; WATCHROOM_BENCH_JSON names a file for the
// JSON, WATCHROOM_BENCH_ARGS adds or overrides flags (space-separated).
// Nothing is asserted: only a run that cannot complete fails.
func BenchmarkProfile(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run is the whole profile; keep the default -benchtime")
	}
	s := startBenchStack(b, stackOptions{batch: 5000, flush: "0s", env: []string{
		"WATCHROOM_WS_MAX_PER_USER=100000", "WATCHROOM_WS_MAX_PER_ADDR=100000"}})
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"user", "add", "--name", "loadgen", "--role", "analyst", "--password-stdin"},
		[]string{"WATCHROOM_DATABASE_URL=" + s.db}, strings.NewReader("loadgen-password\n"), io.Discard, &errOut); err != nil {
		b.Fatalf("user add: %v %s", err, errOut.String())
	}
	args := []string{"bench", "--http-addr", s.addr, "--metrics-addr", s.metrics, "--mqtt-url", s.mqttURL,
		"--database-url", s.db, "--user", "loadgen", "--password-stdin",
		"--publishers", "4", "--rate", "1000", "--duration", "10s", "--clients", "100",
		"--chat-senders", "10", "--chat-members", "200", "--chat-rate", "100", "--idle", "2000"}
	if j := os.Getenv("WATCHROOM_BENCH_JSON"); j != "" {
		args = append(args, "--json", j)
	}
	if extra := os.Getenv("WATCHROOM_BENCH_ARGS"); extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, args, nil, strings.NewReader("loadgen-password\n"), &out, os.Stderr); err != nil {
		b.Fatalf("%v\n%s", err, out.String())
	}
	fmt.Printf("\n%s\n", out.String())
}
