package ingest

import (
	"context"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

// Readings without ts through a real Mosquitto into the real PostgreSQL:
// every message is one row, however close together they arrive.

const burst = 5000

func newPGStore(t *testing.T) *store.Store {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

func pgRows(t *testing.T, st *store.Store, sensor string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM readings WHERE sensor_id = $1`, sensor).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// publishBare publishes n bare numbers to one series as fast as the client
// goes, then waits for the broker's PUBACKs.
func publishBare(t *testing.T, c mqtt.Client, topic string, n int) {
	t.Helper()
	toks := make([]mqtt.Token, 0, n)
	for i := range n {
		toks = append(toks, c.Publish(topic, 1, false, strconv.Itoa(i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// waitLong is waitFor with room for thousands of rows on a busy machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle waits until the row count stops moving, then returns it.
func settle(t *testing.T, st *store.Store, sensor string, want int) int {
	t.Helper()
	waitLong(t, strconv.Itoa(want)+" rows of "+sensor, func() bool { return pgRows(t, st, sensor) >= want })
	time.Sleep(100 * time.Millisecond) // room for anything extra to show
	return pgRows(t, st, sensor)
}

func TestIngestBurstWithoutTSStoresEveryReading(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	st := newPGStore(t)
	in := startIngest(t, b, "ingest-burst", st, nil, nil)
	publishBare(t, newPublisher(t, b), "sensors/b1/temperature", burst)
	if got := settle(t, st, "b1", burst); got != burst {
		t.Fatalf("%d rows, want %d", got, burst)
	}
	if got := testutil.ToFloat64(in.m.duplicate); got != 0 {
		t.Errorf("duplicate = %v, want 0", got)
	}
	// The stamper alone kept them apart: the store had nothing to move.
	if got := testutil.ToFloat64(in.m.restamped); got != 0 {
		t.Errorf("restamped = %v, want 0", got)
	}
}

// TestIngestBacklogWithoutTSAcrossRestart: the broker queues a burst while
// the ingest is down; the next run gets it all at once. Both runs use the
// same stuck clock, so the second run's stamper gives exactly the stamps
// the first run stored: the store must move them, not merge them.
func TestIngestBacklogWithoutTSAcrossRestart(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	st := newPGStore(t)
	pub := newPublisher(t, b)
	stuck := time.Now().Add(-time.Minute)
	clock := func(in *Ingest) { in.now = func() time.Time { return stuck } }

	first := startIngest(t, b, "ingest-backlog", st, nil, clock)
	publishBare(t, pub, "sensors/b2/temperature", burst)
	if got := settle(t, st, "b2", burst); got != burst {
		t.Fatalf("live: %d rows, want %d", got, burst)
	}
	first.stop(t)

	publishBare(t, pub, "sensors/b2/temperature", burst) // queued by the broker

	second := startIngest(t, b, "ingest-backlog", st, nil, clock)
	if got := settle(t, st, "b2", 2*burst); got != 2*burst {
		t.Fatalf("after the backlog: %d rows, want %d", got, 2*burst)
	}
	if got := testutil.ToFloat64(second.m.restamped); got != burst {
		t.Errorf("restamped = %v, want %d (every stamp of the second run was taken)", got, burst)
	}
	if got := testutil.ToFloat64(second.m.duplicate); got != 0 {
		t.Errorf("duplicate = %v, want 0", got)
	}
	t.Logf("second run: received %v, queue_full %v", testutil.ToFloat64(second.m.received), testutil.ToFloat64(second.m.queueFull))
}
