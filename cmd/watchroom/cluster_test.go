package main

// The cluster tests: three `watchroom serve` processes (children, so that
// one can be killed with SIGKILL) in one share group, on one database and
// one private Mosquitto, behind a real haproxy. Every client connects
// through haproxy, as a browser behind a load balancer does, and learns
// from the X-Watchroom-Server header which instance it landed on.

import (
	"context"
	"encoding/json"
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

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fasthttp/websocket"

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
func newCluster(t *testing.T, rules map[string][]model.AlertRule, extra ...string) *cluster {
	t.Helper()
	return startCluster(t, clusterSize, rules, extra...)
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
	return c.theOne(t, "watchroom_alerts_leader", "alert detector")
}

// theOne returns the one instance whose gauge is 1, waiting up to 30 s
// for exactly one.
func (c *cluster) theOne(t *testing.T, gauge, what string) int {
	t.Helper()
	who := -1
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool {
		who = -1
		for i, inst := range c.insts {
			if inst.metrics()[gauge] == 1 {
				if who >= 0 {
					return false
				}
				who = i
			}
		}
		return who >= 0
	}) {
		t.Fatalf("no single %s elected within 30s", what)
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
// once each and in seq order; with users on each instance, presence, chat
// in a room, a direct message, an alert (opened once by the elected
// detector) and a command's response reach the users concerned once,
// wherever they are connected.
func TestClusterBehavesAsOneInstance(t *testing.T) {
	c := newCluster(t, map[string][]model.AlertRule{"cl-hot": hotRules("t")}, "WATCHROOM_PRESENCE_GRACE=2s")
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

	// Users on three instances: what one does reaches the others, once.
	for _, u := range [][2]string{{"bob", "analyst"}, {"carol", "operator"}} {
		addUser(t, c.db, u[0], u[1], u[0]+"-password")
	}
	alice := c.session(t, "alice", 0)
	bob := c.session(t, "bob", 1)
	carol := c.session(t, "carol", 2)
	// Presence: carol came last, on web-3; alice (web-1) and bob (web-2)
	// hear it from their own instance.
	alice.waitFor(t, "user_joined:general:carol:online")
	bob.waitFor(t, "user_joined:general:carol:online")

	alice.c.send(map[string]any{"type": "chat_message", "id": "m1", "data": map[string]string{"room": "general", "content": "hello from web-1"}})
	bob.c.send(map[string]any{"type": "direct_message", "id": "d1", "data": map[string]string{"to": "carol", "content": "psst"}})
	bob.waitFor(t, "chat_message:general:alice:hello from web-1")
	carol.waitFor(t, "chat_message:general:alice:hello from web-1")
	carol.waitFor(t, "direct_message:bob:psst")

	// An alert: the elected detector opens it once, and every user,
	// wherever connected, gets it once.
	publish(t, pub, "sensors/cl-hot/t", fmt.Sprintf(`{"value":5,"ts":%q}`, base.Format(time.RFC3339Nano)))
	for _, u := range []*session{alice, bob, carol} {
		u.waitFor(t, "alert:cl-hot:open")
	}
	if got := alertRows(t, c.db, "cl-hot"); !slices.Equal(got, []int64{1}) {
		t.Errorf("alerts of cl-hot (count of each): %v, want one alert of one breach", got)
	}

	// A command issued through web-3, answered by the device: one
	// command_response for carol, whichever instance took the answer.
	dev := publisher(t, c.mq.URL())
	if tok := dev.Subscribe("devices/cl-dev/commands", 1, func(cl mqtt.Client, m mqtt.Message) {
		var cmd struct{ ID string }
		if json.Unmarshal(m.Payload(), &cmd) == nil {
			cl.Publish("devices/cl-dev/responses", 1, false, fmt.Sprintf(`{"id":%q,"status":"success","message":"ok"}`, cmd.ID))
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device subscribe: %v", tok.Error())
	}
	carol.c.send(map[string]any{"type": "command", "id": "c1", "data": map[string]any{"sensor_id": "cl-dev", "action": "calibrate_sensor"}})
	carol.waitFor(t, "command_response:cl-dev:success")

	// carol goes: after the grace, web-1 and web-2 announce her offline.
	carol.c.conn.Close()
	alice.waitFor(t, "user_left:general:carol:offline")
	bob.waitFor(t, "user_left:general:carol:offline")

	// Nothing came twice (a second of slack for late copies).
	time.Sleep(time.Second)
	for _, u := range []*session{alice, bob, carol} {
		u.drain()
		t.Logf("%s received %v", u.name, u.counts)
		for k, n := range u.counts {
			if n > 1 && !strings.HasPrefix(k, "pong") {
				t.Errorf("%s got %q %d times", u.name, k, n)
			}
		}
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

// session is a user's /ws connection on a chosen instance, counting the
// messages it receives by a key of their type and main fields.
type session struct {
	name   string
	c      *wsClient
	counts map[string]int
}

// session logs name in and connects through haproxy until haproxy puts
// the connection on instance i (bounded: round robin gets there within
// one turn).
func (c *cluster) session(t *testing.T, name string, i int) *session {
	t.Helper()
	token := login(t, c.lb.addr, name, name+"-password")
	for range 3 * len(c.insts) {
		conn, resp, err := websocket.DefaultDialer.Dial("ws://"+c.lb.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("dial /ws through haproxy: %v", err)
		}
		if resp.Header.Get("X-Watchroom-Server") != c.id(i) {
			conn.Close()
			continue
		}
		w := &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 100000), closed: make(chan int, 1)}
		go w.readLoop()
		t.Cleanup(func() { conn.Close() })
		w.send(map[string]any{"type": "auth", "data": map[string]string{"token": token}})
		if m := w.next(5 * time.Second); m.Type != "auth_ok" {
			t.Fatalf("%s: after auth got %s %s", name, m.Type, m.Data)
		}
		return &session{name: name, c: w, counts: map[string]int{}}
	}
	t.Fatalf("%s: haproxy did not put a connection on %s", name, c.id(i))
	return nil
}

// record counts m (readings aside) and acks what must be acked.
func (s *session) record(m wsMsg) {
	if len(m.ID) > 0 && m.Type != "" {
		s.c.send(map[string]any{"type": "ack", "ref": m.ID})
	}
	if m.Type == "reading" {
		return
	}
	var d map[string]any
	_ = json.Unmarshal(m.Data, &d)
	key := m.Type
	for _, f := range []string{"room", "user", "from", "sensor_id", "content", "reason", "state", "status"} {
		if v, ok := d[f]; ok {
			key += fmt.Sprintf(":%v", v)
		}
	}
	s.counts[key]++
}

// waitFor reads until a message with key has arrived (bounded).
func (s *session) waitFor(t *testing.T, key string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for s.counts[key] == 0 {
		select {
		case m, ok := <-s.c.msgs:
			if !ok {
				t.Fatalf("%s: connection closed while waiting for %s", s.name, key)
			}
			s.record(m)
		case <-deadline:
			t.Fatalf("%s: no %s within 20s; got %v", s.name, key, s.counts)
		}
	}
}

// drain records what has arrived.
func (s *session) drain() {
	for {
		select {
		case m, ok := <-s.c.msgs:
			if !ok {
				return
			}
			s.record(m)
		default:
			return
		}
	}
}

// killRun is one kill -9 under load: which instance went, and the clients
// that were connected to it.
type killRun struct {
	g      *loadGen
	lead   int // the detector when the load started
	victim int
	theirs []*tracker
	atKill int64
	// brokerRestarted: publishes may have ended without PUBACK while the
	// broker was down (paho's business, not the server's): every
	// acknowledged reading must be stored, not every published one.
	brokerRestarted bool
}

// killUnderLoad publishes at 2,000 readings/s, kills the instance pick
// chooses (given the detector) once the load runs, restarts it 2 s later
// with the same instance id (its broker session holds its share), calls
// restarted, lets the load go on for 3 s, stops it and waits (bounded)
// for every reading to be stored and to reach every client.
func (c *cluster) killUnderLoad(t *testing.T, ks []*tracker, pick func(lead int) int, restarted func(r *killRun)) *killRun {
	t.Helper()
	r := &killRun{lead: c.leader(t)}
	r.victim = pick(r.lead)
	for _, k := range ks {
		if k.firstServer() == c.id(r.victim) {
			r.theirs = append(r.theirs, k)
		}
	}
	if len(r.theirs) == 0 {
		t.Fatalf("no client on %s", c.id(r.victim))
	}
	r.g = newLoad(t, c.mq.URL())
	r.g.run()
	if !waitUntil(20*time.Second, 50*time.Millisecond, func() bool { return countLike(t, c.db, "f-%") >= loadRate }) {
		t.Fatalf("no steady ingest within 20s: %d readings stored", countLike(t, c.db, "f-%"))
	}
	c.insts[r.victim].signal(syscall.SIGKILL, 10*time.Second)
	r.atKill = r.g.published.Load()
	time.Sleep(2 * time.Second)
	c.insts[r.victim].start()
	if restarted != nil {
		restarted(r)
	}
	time.Sleep(3 * time.Second)
	c.settle(t, r.g, ks)
	return r
}

// settle stops the load and waits (bounded) for every acknowledged reading
// to be stored and for every client to hold every stored reading.
func (c *cluster) settle(t *testing.T, g *loadGen, ks []*tracker) {
	t.Helper()
	g.finish(60 * time.Second)
	want := int(g.ackedN.Load())
	if !waitUntil(60*time.Second, 100*time.Millisecond, func() bool { return countLike(t, c.db, "f-%") >= want }) {
		t.Errorf("%d readings stored within 60s of the end, %d acknowledged", countLike(t, c.db, "f-%"), want)
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
}

// verify checks the store and every client against what was published,
// that no client saw readings out of seq order, and that the killed
// instance's clients reconnected through haproxy to another instance and
// resumed.
func (c *cluster) verify(t *testing.T, r *killRun, ks []*tracker) (faultFigures, []string) {
	t.Helper()
	f := verifyLoad(t, c.db, r.g, ks)
	if f.Stored != f.Published && !r.brokerRestarted {
		t.Errorf("stored %d readings, published %d", f.Stored, f.Published)
	}
	for _, k := range ks {
		k.mu.Lock()
		if k.seqBack != 0 {
			t.Errorf("client %s (%v): %d readings out of seq order", k.name, k.servers, k.seqBack)
		}
		k.mu.Unlock()
	}
	var moved []string
	for _, k := range r.theirs {
		k.mu.Lock()
		if len(k.servers) < 2 || k.resumes == 0 || k.resumed != k.resumes {
			t.Errorf("client %s of the killed %s: connections %v, resumes %d sent / %d answered (%v)", k.name, c.id(r.victim), k.servers, k.resumes, k.resumed, k.resumeFails)
		} else if k.servers[1] == c.id(r.victim) {
			t.Errorf("client %s reconnected to the killed instance %s: %v", k.name, c.id(r.victim), k.servers)
		}
		moved = append(moved, strings.Join(k.servers, "→"))
		k.mu.Unlock()
	}
	return f, moved
}

// kill -9 of one instance at 2,000 readings/s, behind haproxy: nothing is
// lost or stored twice, its clients reconnect through haproxy to the
// others and resume with every reading in seq order, and the alert fed by
// every reading of one sensor is opened once and counts each reading at
// most once. The killed instance is one that does not run detection
// (TestClusterKillTheDetectorUnderLoad kills that one).
func TestClusterKillOneInstanceUnderLoad(t *testing.T) {
	const hot = "f-07"  // every load reading of f-07 breaches
	const late = "f-11" // breaches after the restart
	c := newCluster(t, map[string][]model.AlertRule{hot: hotRules("v")})
	ks := c.clients(t, 9)
	r := c.killUnderLoad(t, ks, func(lead int) int { return (lead + 1) % clusterSize }, func(r *killRun) {
		// A rule taken by the detector after the restart, with a limit
		// the load crosses about half a second later: that alert must
		// open too.
		later := r.g.published.Load() + loadRate/2
		mustPutRules(t, c.insts[r.lead].addr, c.token, late,
			fmt.Sprintf(`{"rules":[{"metric":"v","kind":"threshold","max":%d},{"metric":"v","kind":"spike","enabled":false}]}`, later))
	})
	f, moved := c.verify(t, r, ks)

	// Alerts: the breach updates still held back (UpdateInterval, 1 s)
	// are stored within a second or two.
	time.Sleep(2 * time.Second)
	hotStored, _ := countReadings(t, c.db, hot)
	alerts := alertRows(t, c.db, hot)
	// The detector lived through it: it evaluated each of f-07's readings
	// once, in whatever time order their batches committed.
	if len(alerts) != 1 || alerts[0] != int64(hotStored) {
		t.Errorf("alerts of %s (count of each): %v; want one alert counting each of its %d stored readings", hot, alerts, hotStored)
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
	metrics := c.insts[r.lead].metrics()
	outOfOrder := metricSum(metrics, "watchroom_alerts_readings_out_of_order_total")
	if again := metricSum(metrics, "watchroom_alerts_readings_ignored_total", `reason="already_evaluated"`); again != 0 {
		t.Errorf("the detector ignored %v readings as already evaluated; it never restarted, so none were", again)
	}
	f.log(t, "cluster-kill-9", fmt.Sprintf("killed=%s at_published=%d reconnections=%v hot_alert_count=%v hot_stored=%d out_of_order=%v",
		c.id(r.victim), r.atKill, moved, alerts, hotStored, outOfOrder))
}

// ingestLeader returns the one instance that ingests (WATCHROOM_INGEST=elected).
func (c *cluster) ingestLeader(t *testing.T) int {
	t.Helper()
	return c.theOne(t, "watchroom_ingest_leader", "ingesting instance")
}

// With WATCHROOM_INGEST=elected, at 2,000 readings/s: kill -9 the
// instance that ingests, and while it is down restart the broker. Another
// instance takes the ingest session over, the broker keeps the session's
// plain subscription and queue across its restart (a share group's
// members it does not keep, docs/mqtt.md), and every acknowledged reading
// is stored once and reaches every client in seq order; the killed
// instance's clients resume on the others.
func TestClusterElectedIngestSurvivesKillAndBrokerRestart(t *testing.T) {
	c := newCluster(t, nil, "WATCHROOM_INGEST=elected")
	ks := c.clients(t, 6)
	first := c.ingestLeader(t)
	var next int
	r := c.killUnderLoad(t, ks, func(int) int { return first }, func(r *killRun) {
		next = c.ingestLeader(t)
		r.brokerRestarted = true
		c.mq.Stop()
		time.Sleep(2 * time.Second)
		c.mq.StartAgain()
	})
	f, moved := c.verify(t, r, ks)
	if next == first {
		t.Errorf("%s ingests again after its restart; another instance should have taken the session over", c.id(first))
	}
	if f.AckFailed > 0 {
		t.Logf("%d publishes ended without PUBACK while the broker was down (first: %v)", f.AckFailed, r.g.firstErr.Load())
	}
	dups := 0.0
	for _, inst := range c.insts {
		dups += metricSum(inst.metrics(), "watchroom_readings_duplicate_total")
	}
	f.log(t, "cluster-elected-kill-and-broker-restart", fmt.Sprintf("killed=%s new_ingest=%s at_published=%d reconnections=%v duplicates_counted=%v",
		c.id(first), c.id(next), r.atKill, moved, dups))
}

// kill -9 of the instance running alert detection, at 2,000 readings/s:
// readings and clients as above; another instance takes detection over,
// the restarted one stands by, and the alerts open once each: one open
// before the kill (continued, not opened again), one whose rule, stored
// through another instance while the detector was dead, the new detector
// takes.
func TestClusterKillTheDetectorUnderLoad(t *testing.T) {
	const hot = "f-07"  // every load reading of f-07 breaches
	const late = "f-11" // breaches after the restart
	c := newCluster(t, map[string][]model.AlertRule{hot: hotRules("v")})
	ks := c.clients(t, 9)
	r := c.killUnderLoad(t, ks, func(lead int) int { return lead }, func(r *killRun) {
		later := r.g.published.Load() + loadRate/2
		mustPutRules(t, c.insts[(r.lead+1)%clusterSize].addr, c.token, late,
			fmt.Sprintf(`{"rules":[{"metric":"v","kind":"threshold","max":%d},{"metric":"v","kind":"spike","enabled":false}]}`, later))
	})
	f, moved := c.verify(t, r, ks)
	next := c.leader(t)
	if next == r.victim {
		t.Errorf("%s leads detection again after its restart; another instance should have taken over", c.id(next))
	}
	time.Sleep(2 * time.Second)
	hotAlerts, lateAlerts := alertRows(t, c.db, hot), alertRows(t, c.db, late)
	if len(hotAlerts) != 1 || len(lateAlerts) != 1 {
		t.Errorf("alerts (count of each): %s %v, %s %v; want one each", hot, hotAlerts, late, lateAlerts)
	}
	hotStored, _ := countReadings(t, c.db, hot)
	f.log(t, "cluster-kill-9-detector", fmt.Sprintf("killed=%s new_detector=%s at_published=%d reconnections=%v hot_alert_count=%v hot_stored=%d late_alert_count=%v",
		c.id(r.victim), c.id(next), r.atKill, moved, hotAlerts, hotStored, lateAlerts))
}
