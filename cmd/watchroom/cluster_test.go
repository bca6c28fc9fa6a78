package main

// The cluster tests: three `watchroom serve` processes (children, so that
// one can be killed with SIGKILL) in one share group, on one database and
// one private Mosquitto, behind a real haproxy. Every client connects
// through haproxy, as a browser behind a load balancer does, and learns
// from the X-Watchroom-Server header which instance it landed on.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/store"
)

// lb is a haproxy process owned by one test, ended by its PID.
type lb struct {
	addr string
	cfg  string
	log  string
	cmd  *exec.Cmd
	done chan error
}

// haproxyConfig balances HTTP and /ws over the instances: mode http
// passes WebSocket upgrades, `timeout tunnel` governs an upgraded
// connection (longer than the 30 s ping interval), the health check is
// /readyz (database and broker connected), and a connection refused by a
// dead instance is retried on another (redispatch) before haproxy's
// checks have marked it down. Each response names the instance that
// served it.
func haproxyConfig(listen string, servers [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    # Below the file limit of a test process (haproxy needs two
    # descriptors per connection and refuses to start otherwise).
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 3
    option redispatch
frontend watchroom
    bind %s
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header X-Watchroom-Server %%s
    default-server check inter 300ms fall 2 rise 1
`, listen)
	for _, s := range servers {
		fmt.Fprintf(&b, "    server %s %s\n", s[0], s[1])
	}
	return b.String()
}

// startLB runs haproxy in the foreground (-db) with a generated
// configuration on a free loopback port, and waits until it has routed a
// request to every instance.
func startLB(t testing.TB, servers [][2]string) *lb {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy not found (%v): install Debian's haproxy (make services does)", err)
		}
		bin = "/usr/sbin/haproxy"
	}
	dir := t.TempDir()
	l := &lb{addr: fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t)), cfg: filepath.Join(dir, "haproxy.cfg"), log: filepath.Join(dir, "haproxy.log"), done: make(chan error, 1)}
	if err := os.WriteFile(l.cfg, []byte(haproxyConfig(l.addr, servers)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(l.log)
	if err != nil {
		t.Fatal(err)
	}
	l.cmd = exec.Command(bin, "-db", "-f", l.cfg)
	l.cmd.Stdout, l.cmd.Stderr = f, f
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start haproxy: %v", err)
	}
	go func() { l.done <- l.cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-l.done
		if t.Failed() {
			b, _ := os.ReadFile(l.log)
			t.Logf("haproxy log (tail):\n%s", tail(string(b), 3000))
		}
	})
	want := make([]string, len(servers))
	for i, s := range servers {
		want[i] = s[0]
	}
	seen := map[string]bool{}
	exited := false
	if !waitUntil(20*time.Second, 50*time.Millisecond, func() bool {
		select {
		case err := <-l.done:
			l.done <- err
			exited = true
			return true
		default:
		}
		resp, err := http.Get("http://" + l.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			seen[resp.Header.Get("X-Watchroom-Server")] = true
		}
		return len(seen) == len(want)
	}) || exited {
		b, _ := os.ReadFile(l.log)
		t.Fatalf("haproxy routed to %v within 20s, want %v\n%s", seen, want, b)
	}
	return l
}

// cluster is the rig of the cluster tests.
type cluster struct {
	db    string
	mq    *mqtttest.Broker
	insts []*child // web-1, web-2, web-3
	lb    *lb
	token string
}

const clusterSize = 3

// newCluster starts the database, the broker, the instances and haproxy;
// rules are stored before the instances start, so that the elected
// detector loads them (rule changes reach only the instance that takes
// them, docs/deploy.md).
func newCluster(t *testing.T, rules map[string][]model.AlertRule) *cluster {
	t.Helper()
	return startCluster(t, clusterSize, rules)
}

// startCluster starts n instances; extra settings go to every instance.
func startCluster(t testing.TB, n int, rules map[string][]model.AlertRule, extra ...string) *cluster {
	t.Helper()
	c := &cluster{db: newDB(t), mq: mqtttest.Start(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, c.db, nil); err != nil {
		t.Fatal(err)
	}
	if len(rules) > 0 {
		st, err := store.Open(ctx, c.db)
		if err != nil {
			t.Fatal(err)
		}
		for sensor, rs := range rules {
			if _, err := st.ReplaceAlertRules(ctx, sensor, "test", time.Now(), rs); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
	}
	addUser(t, c.db, "alice", "operator", "alice-password")
	var servers [][2]string
	for i := range n {
		id := fmt.Sprintf("web-%d", i+1)
		env := faultEnv(t, c.db, c.mq.URL(), append([]string{"WATCHROOM_INSTANCE_ID=" + id, "WATCHROOM_MQTT_CLIENT_ID=", "WATCHROOM_MQTT_SHARE_GROUP=wr"}, extra...)...)
		inst := startChild(t, env)
		c.insts = append(c.insts, inst)
		servers = append(servers, [2]string{id, inst.addr})
	}
	c.lb = startLB(t, servers)
	c.token = login(t, c.lb.addr, "alice", "alice-password")
	return c
}

func (c *cluster) id(i int) string { return fmt.Sprintf("web-%d", i+1) }

// clients starts n reconnecting trackers through haproxy and fails unless
// every instance holds at least one of them.
func (c *cluster) clients(t *testing.T, n int) []*tracker {
	t.Helper()
	ks := make([]*tracker, n)
	per := map[string]int{}
	for i := range ks {
		ks[i] = newTracker(fmt.Sprintf("client-%d", i), c.lb.addr, c.token)
		ks[i].reconnect = true
		ks[i].start(t)
		per[ks[i].firstServer()]++
	}
	for i := range c.insts {
		if per[c.id(i)] == 0 {
			t.Fatalf("clients by instance %v: none on %s", per, c.id(i))
		}
	}
	t.Logf("clients by instance: %v", per)
	return ks
}

func (k *tracker) firstServer() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.servers) == 0 {
		return ""
	}
	return k.servers[0]
}

// leader returns the index of the one instance running alert detection,
// waiting for the election (bounded).
func (c *cluster) leader(t *testing.T) int {
	t.Helper()
	who := -1
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool {
		who = -1
		for i, inst := range c.insts {
			if inst.metrics()["watchroom_alerts_leader"] == 1 {
				if who >= 0 {
					return false
				}
				who = i
			}
		}
		return who >= 0
	}) {
		t.Fatal("no single alert detector elected within 30s")
	}
	return who
}

// alertRows returns the stored alerts of sensor: how many, and the count
// (breaches) of each.
func alertRows(t *testing.T, dbURL, sensor string) []int64 {
	t.Helper()
	conn, ctx, done := faultDBConn(t, dbURL, 10*time.Second)
	defer done()
	rows, err := conn.Query(ctx, `SELECT count FROM alerts WHERE sensor_id = $1 ORDER BY id`, sensor)
	if err != nil {
		t.Fatalf("read alerts: %v", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// hotRules makes every reading of sensor/metric a breach of one threshold
// alert (the load's values are 0 and up); the spike rule is off, so the
// alert's count is the number of readings evaluated.
func hotRules(metric string) []model.AlertRule {
	return []model.AlertRule{
		{Metric: metric, Kind: model.RuleThreshold, Enabled: true, Max: fpv(-1)},
		{Metric: metric, Kind: model.RuleSpike, Enabled: false},
	}
}

// Three instances behind haproxy behave as one: readings published once
// are stored once and reach every client, whichever instance it is on,
// once each and in seq order; one instance detects alerts, and a breach
// opens one alert.
func TestClusterBehavesAsOneInstance(t *testing.T) {
	c := newCluster(t, map[string][]model.AlertRule{"cl-hot": hotRules("t")})
	ks := c.clients(t, 6)
	lead := c.leader(t)

	pub := publisher(t, c.mq.URL())
	const n = 300
	base := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		publish(t, pub, "sensors/"+sensorOf(i)+"/v", fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts))
	}
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool { return countLike(t, c.db, "f-%") >= n }) {
		t.Fatalf("%d of %d readings stored within 30s", countLike(t, c.db, "f-%"), n)
	}
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool {
		for _, k := range ks {
			if k.received() < n {
				return false
			}
		}
		return true
	}) {
		t.Errorf("not every client received the %d readings within 30s", n)
	}
	var ingested []float64
	for _, inst := range c.insts {
		ingested = append(ingested, inst.metrics()["watchroom_readings_ingested_total"])
	}
	if n, _ := countReadings(t, c.db, "f-00"); n != 15 {
		t.Errorf("f-00: %d rows, want 15", n)
	}
	if got := countLike(t, c.db, "f-%"); got != n {
		t.Errorf("%d readings stored, want %d", got, n)
	}
	for _, k := range ks {
		k.mu.Lock()
		if k.distinct != n || k.dups != 0 || k.seqBack != 0 {
			t.Errorf("client %s on %v: %d distinct readings, %d twice, %d out of seq order; want %d, 0, 0", k.name, k.servers, k.distinct, k.dups, k.seqBack, n)
		}
		k.mu.Unlock()
	}
	t.Logf("readings ingested per instance: %v (the share group splits them)", ingested)

	// One breach: the elected detector opens one alert.
	publish(t, pub, "sensors/cl-hot/t", fmt.Sprintf(`{"value":5,"ts":%q}`, base.Format(time.RFC3339Nano)))
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool { return len(alertRows(t, c.db, "cl-hot")) > 0 }) {
		t.Fatal("no alert within 30s of the breach")
	}
	time.Sleep(time.Second) // room for a second detector, were there one
	if got := alertRows(t, c.db, "cl-hot"); !slices.Equal(got, []int64{1}) {
		t.Errorf("alerts of cl-hot (count of each): %v, want one alert of one breach", got)
	}
	for i, inst := range c.insts {
		want := 0.0
		if i == lead {
			want = 1
		}
		if got := metricSum(inst.metrics(), "watchroom_alerts_opened_total"); got != want {
			t.Errorf("%s (leader %s) opened %v alerts, want %v", c.id(i), c.id(lead), got, want)
		}
	}
}

// kill -9 of one instance at 2,000 readings/s, behind haproxy: nothing is
// lost or stored twice, its clients reconnect through haproxy to the
// others and resume with every reading in seq order, and the alert fed by
// every reading of one sensor is opened once and counts each reading
// once. The killed instance is one that does not run detection (a
// detector's handover has its own price, docs/alerts.md).
func TestClusterKillOneInstanceUnderLoad(t *testing.T) {
	const hot = "f-07"  // every load reading of f-07 breaches
	const late = "f-11" // breaches after the restart
	c := newCluster(t, map[string][]model.AlertRule{hot: hotRules("v")})
	ks := c.clients(t, 9)
	lead := c.leader(t)
	victim := (lead + 1) % clusterSize
	var theirs []*tracker
	for _, k := range ks {
		if k.firstServer() == c.id(victim) {
			theirs = append(theirs, k)
		}
	}

	g := newLoad(t, c.mq.URL())
	g.run()
	if !waitUntil(20*time.Second, 50*time.Millisecond, func() bool { return countLike(t, c.db, "f-%") >= loadRate }) {
		t.Fatalf("no steady ingest within 20s: %d readings stored", countLike(t, c.db, "f-%"))
	}
	c.insts[victim].signal(syscall.SIGKILL, 10*time.Second)
	atKill := g.published.Load()
	time.Sleep(2 * time.Second)
	c.insts[victim].start() // the same instance id: its broker session holds its share
	// A rule taken by the detector after the restart, with a limit the
	// load crosses about half a second later: that alert must open too.
	later := g.published.Load() + loadRate/2
	mustPutRules(t, c.insts[lead].addr, c.token, late,
		fmt.Sprintf(`{"rules":[{"metric":"v","kind":"threshold","max":%d},{"metric":"v","kind":"spike","enabled":false}]}`, later))
	time.Sleep(3 * time.Second)
	g.finish(60 * time.Second)
	want := int(g.published.Load())
	if !waitUntil(60*time.Second, 100*time.Millisecond, func() bool { return countLike(t, c.db, "f-%") >= want }) {
		t.Errorf("%d of %d readings stored within 60s of the end", countLike(t, c.db, "f-%"), want)
	}
	stored := countLike(t, c.db, "f-%")
	waitUntil(60*time.Second, 100*time.Millisecond, func() bool {
		for _, k := range ks {
			if k.received() < stored {
				return false
			}
		}
		return true
	})

	f := verifyLoad(t, c.db, g, ks)
	if f.Stored != f.Published {
		t.Errorf("stored %d readings, published %d", f.Stored, f.Published)
	}
	for _, k := range ks {
		k.mu.Lock()
		if k.seqBack != 0 {
			t.Errorf("client %s (%v): %d readings out of seq order", k.name, k.servers, k.seqBack)
		}
		k.mu.Unlock()
	}
	for _, k := range theirs {
		k.mu.Lock()
		if len(k.servers) < 2 || k.resumes == 0 || k.resumed != k.resumes {
			t.Errorf("client %s of the killed %s: connections %v, resumes %d sent / %d answered (%v)", k.name, c.id(victim), k.servers, k.resumes, k.resumed, k.resumeFails)
		} else if k.servers[1] == c.id(victim) {
			t.Errorf("client %s reconnected to the killed instance %s: %v", k.name, c.id(victim), k.servers)
		}
		k.mu.Unlock()
	}
	if len(theirs) == 0 {
		t.Errorf("no client was on the killed instance %s", c.id(victim))
	}

	// Alerts: the breach updates still held back (UpdateInterval, 1 s)
	// are stored within a second or two.
	time.Sleep(2 * time.Second)
	hotStored, _ := countReadings(t, c.db, hot)
	alerts := alertRows(t, c.db, hot)
	if len(alerts) != 1 || alerts[0] < 1 || alerts[0] > int64(hotStored) {
		t.Errorf("alerts of %s (count of each): %v; want one alert of at most its %d stored readings", hot, alerts, hotStored)
	}
	if got := alertRows(t, c.db, late); len(got) != 1 {
		t.Errorf("alerts of %s, breached after the restart: %v, want one", late, got)
	}
	opened := 0.0
	for _, inst := range c.insts {
		opened += metricSum(inst.metrics(), "watchroom_alerts_opened_total")
	}
	if opened != 2 {
		t.Errorf("%v alerts opened across the instances, want 2", opened)
	}
	notNewer := metricSum(c.insts[lead].metrics(), "watchroom_alerts_readings_ignored_total", `reason="not_newer"`)
	var moved []string
	for _, k := range theirs {
		moved = append(moved, strings.Join(k.servers, "→"))
	}
	f.log(t, "cluster-kill-9", fmt.Sprintf("killed=%s at_published=%d reconnections=%v hot_alert_count=%v hot_stored=%d not_newer_ignored=%v", c.id(victim), atKill, moved, alerts, hotStored, notNewer))
}
