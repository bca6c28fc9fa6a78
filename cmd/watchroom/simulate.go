package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/watchroom/watchroom/internal/sim"
)

func runSimulate(ctx context.Context, args, env []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := lookupEnv(env, "WATCHROOM_MQTT_URL")
	if def == "" {
		def = "tcp://127.0.0.1:1883"
	}
	var cfg sim.Config
	fs.StringVar(&cfg.BrokerURL, "mqtt-url", def, "MQTT broker to publish to (env WATCHROOM_MQTT_URL)")
	fs.IntVar(&cfg.Sensors, "sensors", 10, "number of simulated sensors")
	fs.Float64Var(&cfg.Rate, "rate", 1, "readings per second per sensor")
	fs.Float64Var(&cfg.Anomalies, "anomalies", 0, "probability per reading of an injected spike or out-of-range value; sensors drop out at a twentieth of that rate")
	fs.StringVar(&cfg.ClientID, "client-id", "", "MQTT client id (default: random)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "random seed (0: time-based)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return errors.New("simulate takes flags only")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "sim")
	s, err := sim.New(cfg, log)
	if err != nil {
		return err
	}
	log.Info("simulating", "sensors", cfg.Sensors, "rate", cfg.Rate, "anomalies", cfg.Anomalies, "mqtt", redactURL(cfg.BrokerURL))
	return s.Run(ctx)
}
