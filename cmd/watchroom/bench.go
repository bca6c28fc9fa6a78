package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/watchroom/watchroom/internal/loadgen"
)

// runBench drives a running server from outside (internal/loadgen) and
// prints the figures; --json writes them too.
func runBench(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.Config
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "the server's public listener, or the load balancer in front of several instances")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:9090", "the server's metrics listener (WATCHROOM_METRICS_ADDR); several instances: their listeners, comma-separated, and the server figures are their sums; empty: no server figures")
	fs.StringVar(&c.MQTTURL, "mqtt-url", "tcp://127.0.0.1:1883", "the broker the server subscribes to")
	fs.StringVar(&c.DatabaseURL, "database-url", lookupEnv(env, "WATCHROOM_DATABASE_URL"), "optional: count stored readings and measure the CopyFrom ceiling (env WATCHROOM_DATABASE_URL)")
	fs.StringVar(&c.User, "user", "bench", "user to log in as (role analyst or above for chat); with --users N: USER1..USERN")
	fs.IntVar(&c.Users, "users", 1, "number of users the connections are spread over")
	passStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (else env WATCHROOM_BENCH_PASSWORD)")
	fs.IntVar(&c.Publishers, "publishers", 4, "P: MQTT publishers")
	fs.IntVar(&c.Rate, "rate", 1000, "R: readings per second, in total")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "D: how long to publish and chat")
	fs.IntVar(&c.Clients, "clients", 100, "C: WebSocket clients receiving readings")
	fs.IntVar(&c.ChatSenders, "chat-senders", 0, "K: chat senders (each at most WATCHROOM_WS_RATE messages/s); 0: no chat")
	fs.IntVar(&c.ChatMembers, "chat-members", 200, "M: connections in the chat room, senders included")
	fs.IntVar(&c.ChatRate, "chat-rate", 100, "chat messages per second, in total")
	fs.StringVar(&c.Room, "room", "general", "chat room")
	fs.IntVar(&c.Idle, "idle", 0, "N: idle authenticated connections, to measure RSS per connection")
	fs.BoolVar(&c.Ceilings, "ceilings", true, "measure the broker-alone and database-alone ceilings in the same run")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "bound on waiting for the last readings and messages")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	// Loopback only: this is a load generator, not a tool to aim at others.
	addrs := append([]string{c.HTTPAddr, hostOfURL(c.MQTTURL)}, strings.Split(c.MetricsAddr, ",")...)
	for _, a := range addrs {
		if a != "" && !loopback(a) {
			return fmt.Errorf("bench: %q is not a loopback address; the load generator only drives this machine", a)
		}
	}
	c.Password = lookupEnv(env, "WATCHROOM_BENCH_PASSWORD")
	if *passStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("bench: read password: %w", err)
		}
		c.Password = strings.TrimRight(line, "\r\n")
	}
	if !*quiet {
		c.Log = stderr
	}
	res, err := loadgen.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.WriteTable(stdout)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

func hostOfURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Host
}

// loopback reports whether host:port (or a bare host) names this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
