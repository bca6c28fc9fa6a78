package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/store"
)

// streamReading is what a client needs of a reading message.
type streamReading struct {
	SensorID string `json:"sensor_id"`
	Metric   string `json:"metric"`
	TS       string `json:"ts"`
	Seq      int64  `json:"seq"`
}

// collectReadings reads reading messages until n distinct ones arrived
// (bounded), and returns them in arrival order.
func collectReadings(t *testing.T, ws *wsClient, n int) []streamReading {
	t.Helper()
	var out []streamReading
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case m, ok := <-ws.msgs:
			if !ok {
				t.Fatalf("connection closed after %d of %d readings", len(seen), n)
			}
			if m.Type != "reading" {
				continue
			}
			var r streamReading
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
			seen[r.SensorID+"/"+r.Metric+"/"+r.TS] = true
		case <-deadline:
			t.Fatalf("%d of %d readings within 30s", len(seen), n)
		}
	}
	return out
}

// Two instances on one broker and one database, in one share group: a
// reading published once is committed once, and reaches the WebSocket
// clients of both instances, each in seq order; a batch committed but
// never published reaches them from PostgreSQL; a client that comes back
// to the other instance resumes exactly after the seq it saw.
func TestTwoInstancesShareIngestAndFanOut(t *testing.T) {
	db := newDB(t)
	broker := mqtttest.Start(t)
	addUser(t, db, "alice", "operator", "alice-password")
	shared := func(id string) []string {
		return baseEnv(t, db, broker.URL(), "WATCHROOM_INSTANCE_ID="+id, "WATCHROOM_MQTT_CLIENT_ID=", "WATCHROOM_MQTT_SHARE_GROUP=wr")
	}
	envA, envB := shared("web-1"), shared("web-2")
	a, b := startServer(t, envA), startServer(t, envB)
	token := login(t, a.addr, "alice", "alice-password")
	wsA, wsB := connect(t, a.addr, token), connect(t, b.addr, token)

	const n = 600
	pub := publisher(t, broker.URL())
	base := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	stored := func() int {
		total := 0
		for i := range 3 {
			all, _ := countReadings(t, db, fmt.Sprintf("bp-%d", i))
			total += all
		}
		return total
	}
	// In rounds, each committed before the next, so that the instances
	// commit many batches, interleaved.
	for round := range 30 {
		toks := make([]mqtt.Token, 0, n/30)
		for i := round * n / 30; i < (round+1)*n/30; i++ {
			ts := base.Add(time.Duration(i) * time.Millisecond)
			toks = append(toks, pub.Publish(fmt.Sprintf("sensors/bp-%d/t", i%3), 1, false, fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts.Format(time.RFC3339Nano))))
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
		for deadline := time.Now().Add(10 * time.Second); stored() < (round+1)*n/30; {
			if time.Now().After(deadline) {
				t.Fatalf("round %d not stored within 10s", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	for name, ws := range map[string]*wsClient{"web-1": wsA, "web-2": wsB} {
		got := collectReadings(t, ws, n)
		if len(got) != n {
			t.Errorf("%s: %d reading messages for %d readings: some came twice", name, len(got), n)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq == 0 || got[i].Seq < got[i-1].Seq {
				t.Fatalf("%s: reading %d has seq %d after %d: not in seq order", name, i, got[i].Seq, got[i-1].Seq)
			}
		}
	}
	total := stored()
	for i := range 3 {
		if all, distinct := countReadings(t, db, fmt.Sprintf("bp-%d", i)); all != distinct {
			t.Errorf("bp-%d: %d rows for %d readings", i, all, distinct)
		}
	}
	if total != n {
		t.Errorf("%d readings stored, want %d", total, n)
	}
	// A batch committed but never published (its instance died between
	// the two): the next batch shows the gap, and each instance reads the
	// missing one from PostgreSQL after the hold.
	st, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lost, err := st.InsertReadings(t.Context(), []model.Reading{{SensorID: "bp-lost", Metric: "t", Value: 1, TS: base}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "sensors/bp-next/t", fmt.Sprintf(`{"value":2,"ts":%q}`, base.Format(time.RFC3339Nano)))
	var last streamReading
	for name, ws := range map[string]*wsClient{"web-1": wsA, "web-2": wsB} {
		got := collectReadings(t, ws, 2)
		if got[0].SensorID != "bp-lost" || got[0].Seq != lost.Seq || got[1].SensorID != "bp-next" || got[1].Seq <= lost.Seq {
			t.Errorf("%s: after the gap got %+v, want bp-lost (seq %d) then bp-next", name, got, lost.Seq)
		}
		last = got[1]
	}

	// A client of web-1 goes away, readings go on, and it comes back to
	// web-2: its resume by seq replays exactly what it missed.
	wsA.conn.Close()
	const missed = 20
	for i := range missed {
		ts := base.Add(time.Duration(n+i) * time.Millisecond)
		publish(t, pub, fmt.Sprintf("sensors/bp-%d/t", i%3), fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts.Format(time.RFC3339Nano)))
	}
	for deadline := time.Now().Add(10 * time.Second); stored() < n+missed; {
		if time.Now().After(deadline) {
			t.Fatal("the readings published while away were not stored within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	back := dial(t, b.addr, "")
	back.send(map[string]any{"type": "auth", "data": map[string]any{"token": token, "resume": true}})
	if m := back.next(5 * time.Second); m.Type != "auth_ok" {
		t.Fatalf("auth: %s %s", m.Type, m.Data)
	}
	back.send(map[string]any{"type": "resume", "id": "r1", "data": map[string]any{"readings": map[string]any{"seq": last.Seq, "since": last.TS}}})
	var replayed []streamReading
	for deadline := time.After(10 * time.Second); ; {
		var m wsMsg
		select {
		case m = <-back.msgs:
		case <-deadline:
			t.Fatal("no resumed reply within 10s")
		}
		if m.Type == "resumed" {
			break
		}
		if m.Type == "reading" {
			var r streamReading
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatal(err)
			}
			if r.Seq > last.Seq { // batch last.Seq itself is replayed too; the client holds it
				replayed = append(replayed, r)
			}
		}
	}
	if len(replayed) != missed {
		t.Fatalf("resume on the other instance replayed %d readings after seq %d, want %d", len(replayed), last.Seq, missed)
	}
	for i := 1; i < len(replayed); i++ {
		if replayed[i].Seq < replayed[i-1].Seq {
			t.Fatalf("replay not in seq order: %d after %d", replayed[i].Seq, replayed[i-1].Seq)
		}
	}
	// Each instance ingested part of the stream and received the rest
	// from the other one.
	for _, env := range [][]string{envA, envB} {
		m := (&child{t: t, env: env}).metrics()
		ingested, received := m["watchroom_readings_ingested_total"], m["watchroom_backplane_received_total"]
		t.Logf("%s: ingested %v readings, received %v messages from the other, published %v, gaps %v (filled %v, %v readings), stale %v",
			lookupEnv(env, "WATCHROOM_INSTANCE_ID"), ingested, received, m["watchroom_backplane_published_total"],
			m["watchroom_backplane_gaps_total"], m["watchroom_backplane_gaps_filled_total"], m["watchroom_backplane_gap_readings_total"],
			metricSum(m, "watchroom_backplane_dropped_total", `reason="stale"`))
		if m["watchroom_backplane_gaps_filled_total"] < 1 {
			t.Errorf("%s: no gap filled", lookupEnv(env, "WATCHROOM_INSTANCE_ID"))
		}
		if ingested == 0 || ingested == n || received == 0 {
			t.Errorf("%s: ingested %v of %d, received %v messages: want a share of each", lookupEnv(env, "WATCHROOM_INSTANCE_ID"), ingested, n, received)
		}
	}
}
