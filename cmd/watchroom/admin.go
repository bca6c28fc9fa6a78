package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/watchroom/watchroom/internal/store"
)

// databaseURL returns WATCHROOM_DATABASE_URL or the --database-url flag.
func databaseURL(fs *flag.FlagSet, env []string) *string {
	def := lookupEnv(env, "WATCHROOM_DATABASE_URL")
	return fs.String("database-url", def, "PostgreSQL URL (env WATCHROOM_DATABASE_URL)")
}

func lookupEnv(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func runMigrate(ctx context.Context, args, env []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURL(fs, env)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *dbURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return store.Migrate(ctx, *dbURL, log)
}

// runHealthcheck asks the local server's /healthz; for container health
// checks, where the image has no shell or curl.
func runHealthcheck(ctx context.Context, args, env []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := lookupEnv(env, "WATCHROOM_HTTP_ADDR")
	if def == "" {
		def = ":8080"
	}
	addr := fs.String("http-addr", def, "address the server listens on (env WATCHROOM_HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("http addr %q: %w", *addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	scheme, client := "http", http.DefaultClient
	if lookupEnv(env, "WATCHROOM_TLS_CERT") != "" {
		// The server's own certificate names its public host, not the
		// loopback address asked here: the probe checks that the server
		// answers, the certificate is the clients' business.
		scheme = "https"
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback liveness probe
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}
