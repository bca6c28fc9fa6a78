package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/broker"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/sim"
	"github.com/watchroom/watchroom/internal/store"
	"github.com/watchroom/watchroom/internal/web"
)

// demoDatabaseURL is the local PostgreSQL that the README's set-up
// provides; the database is created when missing.
const demoDatabaseURL = "postgres://postgres@127.0.0.1:5432/watchroom?sslmode=disable"

// runDemo runs the whole product on one machine: the server with an
// embedded broker on a free port, the simulator publishing through it, and
// demo users whose passwords it prints.
func runDemo(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("demo", args, env, stderr)
	if err != nil {
		return err
	}
	if lookupEnv(env, "WATCHROOM_HTTP_ADDR") == "" && !hasFlag(args, "http-addr") {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = demoDatabaseURL
		if err := createDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	if cfg.MQTTURL == "" && lookupEnv(env, "WATCHROOM_MQTT_LISTEN") == "" && !hasFlag(args, "mqtt-listen") {
		cfg.MQTTListen = "127.0.0.1:0"
	}
	log := newLogger(cfg, stderr)

	if err := store.Migrate(ctx, cfg.DatabaseURL, log.With("component", "store")); err != nil {
		return err
	}
	users, err := demoUsers(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}

	// With the embedded broker the simulator connects as the gateway user,
	// which may act for all of its sensors over one connection (devices
	// registered one by one would need a connection each). The demo
	// registers the simulated sensors as devices too, so the dashboard
	// marks them registered and WATCHROOM_SENSORS=registered accepts them.
	external := cfg.MQTTURL != ""
	if !external && cfg.MQTTGatewayPassword == "" {
		cfg.MQTTGatewayPassword = broker.NewSecret()
	}
	if err := registerDemoDevices(ctx, cfg.DatabaseURL, demoSensors); err != nil {
		return err
	}

	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	simDone := make(chan error, 1)
	ready := func(s served) {
		fmt.Fprintf(stdout, "\nWatchroom demo is running.\n\n  Dashboard: http://%s/\n\n  Users (passwords are new on every demo start):\n", browserAddr(s.httpAddr))
		for _, u := range users {
			fmt.Fprintf(stdout, "    %-9s %-11s password: %s\n", u.name, "("+string(u.role)+")", u.password)
		}
		simURL := cfg.MQTTURL
		if !external {
			simURL = s.gatewayURL
			fmt.Fprintf(stdout, "\n  MQTT broker: %s (register a device with `watchroom device add --id ID`, then\n  publish as user ID to sensors/ID/<metric>; see docs/mqtt.md)\n", redactURL(s.gatewayURL))
		}
		fmt.Fprintf(stdout, "  Stop with Ctrl-C.\n\n")
		go func() {
			s, err := sim.New(sim.Config{BrokerURL: simURL, Sensors: demoSensors, Rate: 1, Anomalies: 0.01}, log.With("component", "sim"))
			if err != nil {
				simDone <- err
				return
			}
			simDone <- s.Run(simCtx)
		}()
	}
	err = serve(ctx, cfg, log, ready)
	stopSim()
	select {
	case serr := <-simDone:
		if serr != nil && !errors.Is(serr, context.Canceled) {
			log.Warn("simulator stopped", "err", serr)
		}
	case <-time.After(5 * time.Second):
	}
	return err
}

// demoSensors is how many sensors the demo simulates (s-1 ... s-N).
const demoSensors = 12

// registerDemoDevices registers the simulated sensors as devices, unless
// they are already. Their secrets are thrown away: the simulator speaks for
// them as the gateway.
func registerDemoDevices(ctx context.Context, dbURL string, n int) error {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := 1; i <= n; i++ {
		_, err := deviceAdmin{st: st}.AddDevice(ctx, "s-"+strconv.Itoa(i), "demo")
		if err != nil && !errors.Is(err, web.ErrDeviceExists) {
			return err
		}
	}
	return nil
}

type demoUser struct {
	name     string
	role     model.Role
	password string
}

func demoUsers(ctx context.Context, dbURL string) ([]demoUser, error) {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []demoUser
	for _, r := range []model.Role{model.RoleAdmin, model.RoleOperator, model.RoleAnalyst, model.RoleViewer} {
		u := demoUser{name: string(r), role: r, password: randomPassword()}
		if err := upsertUser(ctx, st, u.name, u.role, u.password); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func randomPassword() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// createDatabase creates the database named in dbURL if it does not exist,
// connecting to the server's "postgres" database to do so.
func createDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s (start it with `make services`, or set WATCHROOM_DATABASE_URL): %w", u.Host, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func browserAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
