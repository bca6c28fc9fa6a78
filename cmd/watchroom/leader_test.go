package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/faulttest"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/store"
)

// Two instances in one share group: one of them runs alert detection.
// When the leader loses its database connection (its proxy to PostgreSQL
// is cut), PostgreSQL frees the lead and the other instance takes it,
// loads the state and goes on: a breach seen by the new leader opens one
// alert, and nothing is opened twice. A rule set through the instance
// standing by reaches the leader at its next refresh.
func TestAlertDetectionFailsOverToTheOtherInstance(t *testing.T) {
	db := newDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, sensor := range []string{"al-1", "al-2"} {
		if _, err := st.ReplaceAlertRules(ctx, sensor, "olivia", time.Now(), []model.AlertRule{
			{Metric: "t", Kind: model.RuleThreshold, Enabled: true, Max: fpv(10)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	broker := mqtttest.Start(t)
	proxies := map[string]*faulttest.Proxy{}
	envs := map[string][]string{}
	for _, id := range []string{"web-1", "web-2"} {
		var p *faulttest.Proxy
		envs[id] = baseEnv(t, proxied(t, &p)(db), broker.URL(),
			"WATCHROOM_INSTANCE_ID="+id, "WATCHROOM_MQTT_CLIENT_ID=", "WATCHROOM_MQTT_SHARE_GROUP=wr")
		proxies[id] = p
		startServer(t, envs[id])
	}
	metric := func(id, name string) float64 {
		return metricSum((&child{t: t, env: envs[id]}).metrics(), name)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 30s", what)
			}
		}
	}
	alertsOf := func(sensor string) (n int) {
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM alerts WHERE sensor_id = $1`, sensor).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	leader := func() string {
		l1, l2 := metric("web-1", "watchroom_alerts_leader"), metric("web-2", "watchroom_alerts_leader")
		switch {
		case l1 == 1 && l2 == 0:
			return "web-1"
		case l2 == 1 && l1 == 0:
			return "web-2"
		}
		return ""
	}
	waitFor("one leader", func() bool { return leader() != "" })
	first := leader()
	other := map[string]string{"web-1": "web-2", "web-2": "web-1"}[first]

	pub := publisher(t, broker.URL())
	base := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	breach := func(sensor string, i int) {
		publish(t, pub, "sensors/"+sensor+"/t", fmt.Sprintf(`{"value":11,"ts":%q}`, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano)))
	}
	breach("al-1", 0)
	waitFor("the al-1 alert", func() bool { return alertsOf("al-1") == 1 })
	if o1, o2 := metric(first, "watchroom_alerts_opened_total"), metric(other, "watchroom_alerts_opened_total"); o1 != 1 || o2 != 0 {
		t.Fatalf("opened: leader %v, other %v; want 1 and 0", o1, o2)
	}

	proxies[first].SetMode(faulttest.Cut) // the leader loses PostgreSQL
	defer proxies[first].SetMode(faulttest.Pass)
	waitFor("the other instance to lead", func() bool { return metric(other, "watchroom_alerts_leader") == 1 })
	// The broker alternates between the instances; the cut one cannot
	// commit, so send two: one reaches the instance that can.
	breach("al-2", 1)
	breach("al-2", 2)
	waitFor("the al-2 alert", func() bool { return alertsOf("al-2") == 1 })
	proxies[first].SetMode(faulttest.Pass)
	waitFor("the first instance to stand by", func() bool { return metric(first, "watchroom_alerts_leader") == 0 })
	// The breach the cut instance held is committed now.
	waitFor("both al-2 readings stored", func() bool { n, _ := countReadings(t, db, "al-2"); return n == 2 })
	// A rule set through the instance that stands by reaches the leader.
	addUser(t, db, "olivia", "operator", "olivia-password")
	addr := lookupEnv(envs[first], "WATCHROOM_HTTP_ADDR")
	mustPutRules(t, addr, login(t, addr, "olivia", "olivia-password"), "al-3",
		`{"rules":[{"metric":"t","kind":"threshold","enabled":true,"max":10}]}`)
	for i := 3; alertsOf("al-3") == 0; i++ {
		if i > 3+30*2 {
			t.Fatal("no al-3 alert within 30 breaches (one every 500ms)")
		}
		breach("al-3", i) // until the leader's refresh (5s) has the rule
		time.Sleep(500 * time.Millisecond)
	}
	if n1, n2 := alertsOf("al-1"), alertsOf("al-2"); n1 != 1 || n2 != 1 {
		t.Fatalf("alerts: al-1 %d, al-2 %d; want one each", n1, n2)
	}
	// The leader keeps its checkpoint for the next one.
	var checkpoint string
	if err := st.Pool().QueryRow(ctx, `SELECT value FROM settings WHERE key = 'alerts_checkpoint'`).Scan(&checkpoint); err != nil || checkpoint == "" {
		t.Fatalf("no detection checkpoint stored: %q %v", checkpoint, err)
	}
	if n := alertsOf("al-3"); n != 1 {
		t.Fatalf("al-3: %d alerts, want 1", n)
	}
	if o1, o2 := metric(first, "watchroom_alerts_opened_total"), metric(other, "watchroom_alerts_opened_total"); o1 != 1 || o2 != 2 {
		t.Fatalf("opened: first leader %v, second %v; want 1 and 2", o1, o2)
	}
}

func fpv(v float64) *float64 { return &v }
