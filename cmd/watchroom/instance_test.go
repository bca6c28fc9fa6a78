package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
)

// Two instances sharing a database must not share an instance id or an
// MQTT client id: the second refuses to start and says which setting to
// change. Distinct ids run side by side.
func TestInstanceIDsAreExclusive(t *testing.T) {
	db := pgtest.NewDatabase(t)
	broker := mqtttest.Start(t)
	a := startServer(t, baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID=web-1", "WATCHROOM_MQTT_CLIENT_ID="))

	refused := func(t *testing.T, want []string, extra ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		logs := &syncBuffer{}
		err := run(ctx, []string{"serve"}, baseEnv(t, db, broker.URL(), extra...), strings.NewReader(""), io.Discard, logs)
		if err == nil {
			t.Fatalf("second instance started; want a refusal\n%s", logs.String())
		}
		t.Logf("refused: %v", err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal %q does not mention %q", err, w)
			}
		}
	}
	t.Run("same instance id", func(t *testing.T) {
		refused(t, []string{`instance id "web-1"`, "WATCHROOM_INSTANCE_ID", "watchroom "},
			"WATCHROOM_INSTANCE_ID=web-1", "WATCHROOM_MQTT_CLIENT_ID=")
	})
	t.Run("same MQTT client id", func(t *testing.T) {
		refused(t, []string{`MQTT client id "watchroom-web-1"`, "WATCHROOM_MQTT_CLIENT_ID"},
			"WATCHROOM_INSTANCE_ID=web-2", "WATCHROOM_MQTT_CLIENT_ID=watchroom-web-1")
	})
	// The refused starts left the first instance serving.
	if code := getJSON(t, a.addr, "/readyz", "", nil); code != 200 {
		t.Fatalf("first instance /readyz = %d after the refused starts", code)
	}
	startServer(t, baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID=web-2", "WATCHROOM_MQTT_CLIENT_ID="))
	// A stopped instance frees its id for its next start.
	a.stop()
	startServer(t, baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID=web-1", "WATCHROOM_MQTT_CLIENT_ID="))
}
