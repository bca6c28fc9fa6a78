package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// tslessSensors receive the bursts of bare numbers; tslessOffset keeps
// their values apart from the load's.
const (
	tslessSensors = 1 // one series: every neighbour in a backlog is a possible twin
	tslessBurst   = 3000
	tslessOffset  = 1 << 24
)

// publishBareBurst publishes n bare numbers (no ts: the server stamps
// them) as fast as the connection takes them, and waits for every PUBACK.
func publishBareBurst(t *testing.T, c mqtt.Client, first, n int) {
	t.Helper()
	toks := make([]mqtt.Token, 0, n)
	for i := first; i < first+n; i++ {
		toks = append(toks, c.Publish(fmt.Sprintf("sensors/t-%d/v", i%tslessSensors), 1, false, strconv.Itoa(tslessOffset+i)))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("ts-less publish %d: no PUBACK: %v", first+i, tok.Error())
		}
	}
}

// storedTSless returns how many ts-less readings are stored and how many
// distinct published values they hold.
func storedTSless(t *testing.T, dbURL string) (rows, distinct int) {
	t.Helper()
	conn, ctx, done := faultDBConn(t, dbURL, 10*time.Second)
	defer done()
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT value) FROM readings WHERE sensor_id LIKE 't-%'`).Scan(&rows, &distinct); err != nil {
		t.Fatalf("count ts-less readings: %v", err)
	}
	return rows, distinct
}

// Bursts of readings without ts, while the server is down and right after
// it is back, with the load running: the backlog reaches the new process
// all at once, so many messages are received within the same microsecond,
// and each must still be stored as its own reading.
func TestFaultTSlessAcrossRestart(t *testing.T) {
	r := newFaultRig(t, nil)
	ks := r.trackers(t, "client", 10, true)
	g := r.steadyLoad(t)
	bare := publisher(t, r.broker.URL())
	publishBareBurst(t, bare, 0, tslessBurst) // while up
	r.srv.term(30 * time.Second)
	publishBareBurst(t, bare, tslessBurst, tslessBurst) // while down
	r.srv.start()
	publishBareBurst(t, bare, 2*tslessBurst, tslessBurst) // right after
	const want = 3 * tslessBurst
	waitUntil(30*time.Second, 100*time.Millisecond, func() bool { rows, _ := storedTSless(t, r.db); return rows >= want })
	time.Sleep(2 * time.Second)
	settle(t, r, g, ks, 60*time.Second)
	// settle waited for the load readings; the ts-less ones travel the same
	// pipeline ahead of the last load reading, but give the clients the
	// same bounded time for them.
	waitUntil(20*time.Second, 100*time.Millisecond, func() bool {
		for _, k := range ks {
			k.mu.Lock()
			n := len(k.extra)
			k.mu.Unlock()
			if n < want {
				return false
			}
		}
		return true
	})
	rows, distinct := storedTSless(t, r.db)
	if rows != want || distinct != want {
		t.Errorf("ts-less readings: %d stored, %d distinct values, want exactly %d (published and acknowledged)", rows, distinct, want)
	}
	f := verifyLoad(t, r.db, g, ks)
	for _, k := range ks {
		k.mu.Lock()
		if len(k.extra) != rows {
			t.Errorf("client %s received %d ts-less readings, %d are stored", k.name, len(k.extra), rows)
		}
		k.mu.Unlock()
	}
	requireResume(t, ks)
	f.log(t, "tsless-restart", fmt.Sprintf("tsless_published=%d tsless_stored=%d tsless_distinct=%d", want, rows, distinct))
}
