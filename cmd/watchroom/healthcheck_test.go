package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/tlstest"
)

// TestHealthcheckOverTLS: with WATCHROOM_TLS_CERT set the server speaks
// only HTTPS, and `watchroom healthcheck` (the container's health check,
// run with the same environment) must follow.
func TestHealthcheckOverTLS(t *testing.T) {
	certFile, keyFile, _ := tlstest.SelfSigned(t, t.TempDir())
	env := baseEnv(t, newDB(t), mqtttest.Start(t).URL(),
		"WATCHROOM_TLS_CERT="+certFile, "WATCHROOM_TLS_KEY="+keyFile, "WATCHROOM_METRICS_ADDR=")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"serve"}, env, strings.NewReader(""), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	check := func(env []string) error {
		return run(context.Background(), []string{"healthcheck"}, env, strings.NewReader(""), io.Discard, io.Discard)
	}
	deadline := time.Now().Add(20 * time.Second)
	for check(env) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed against the TLS server: %v\n%s", check(env), tail(logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The same probe in plain HTTP does not pass: TLS is really on.
	plain := []string{"WATCHROOM_HTTP_ADDR=" + lookupEnv(env, "WATCHROOM_HTTP_ADDR")}
	if err := check(plain); err == nil {
		t.Error("a plain-HTTP healthcheck passed against the TLS server")
	}
}
