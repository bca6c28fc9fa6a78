package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkClusterProfile runs `watchroom bench` through haproxy against
// 1, 2 and 3 instances (`watchroom serve` child processes in one share
// group, as in the cluster tests) on one PostgreSQL database and one
// Mosquitto, all on this machine. The server figures (CPU, RSS, batches)
// are sums over the instances. The profile is readings only: 4 publishers
// at 2,000 readings/s for 10 s to 100 WebSocket clients spread over the
// instances by haproxy. WATCHROOM_BENCH_JSON_DIR names a directory for
// cluster-N.json; WATCHROOM_BENCH_INSTANCES changes the counts or their
// order; WATCHROOM_BENCH_ARGS adds or overrides flags. Nothing is
// asserted: only a run that cannot complete fails.
//
//	go test -run '^$' -bench '^BenchmarkClusterProfile$' -benchtime 1x -timeout 10m ./cmd/watchroom
func BenchmarkClusterProfile(b *testing.B) {
	counts := []int{1, 2, 3}
	if v := os.Getenv("WATCHROOM_BENCH_INSTANCES"); v != "" { // e.g. "3,2,1": another order
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("WATCHROOM_BENCH_INSTANCES %q: want counts like 3,2,1", v)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			if b.N > 1 {
				b.Skip("one run is the whole profile; use -benchtime 1x")
			}
			c := startCluster(b, n, nil, "WATCHROOM_LOG_LEVEL=warn")
			addUser(b, c.db, "loadgen", "analyst", "loadgen-password")
			var metrics []string
			for _, inst := range c.insts {
				metrics = append(metrics, lookupEnv(inst.env, "WATCHROOM_METRICS_ADDR"))
			}
			args := []string{"bench", "--http-addr", c.lb.addr, "--metrics-addr", strings.Join(metrics, ","), "--mqtt-url", c.mq.URL(),
				"--database-url", c.db, "--user", "loadgen", "--password-stdin",
				"--publishers", "4", "--rate", "2000", "--duration", "10s", "--clients", "100", "--ceilings=false"}
			if dir := os.Getenv("WATCHROOM_BENCH_JSON_DIR"); dir != "" {
				args = append(args, "--json", filepath.Join(dir, fmt.Sprintf("cluster-%d.json", n)))
			}
			if extra := os.Getenv("WATCHROOM_BENCH_ARGS"); extra != "" {
				args = append(args, strings.Fields(extra)...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, args, nil, strings.NewReader("loadgen-password\n"), &out, os.Stderr); err != nil {
				b.Fatalf("%v\n%s", err, out.String())
			}
			fmt.Printf("\n%d instance(s) behind haproxy:\n%s\n", n, out.String())
		})
	}
}
