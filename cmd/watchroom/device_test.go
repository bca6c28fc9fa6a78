package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/watchroom/watchroom/internal/broker"
	"github.com/watchroom/watchroom/internal/mqtttest"
)

// mqttAs connects user/pass (empty user: anonymous) without retrying and
// returns the client or the connect error. lost receives connection losses.
func mqttAs(t *testing.T, brokerURL, user, pass string, lost chan<- error) (mqtt.Client, error) {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("attack-%s-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if lost != nil {
		opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func mustMQTT(t *testing.T, brokerURL, user, pass string, lost chan<- error) mqtt.Client {
	t.Helper()
	c, err := mqttAs(t, brokerURL, user, pass, lost)
	if err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	return c
}

// inbox collects the topics a client receives.
type inbox struct {
	mu     sync.Mutex
	topics []string
}

func (in *inbox) handle(_ mqtt.Client, m mqtt.Message) {
	in.mu.Lock()
	in.topics = append(in.topics, m.Topic())
	in.mu.Unlock()
}

func (in *inbox) got() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.topics...)
}

// subscribe subscribes and returns the granted QoS (0x80: refused).
func subscribe(t *testing.T, c mqtt.Client, filter string, in *inbox) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, in.handle)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("subscribe %s: timed out", filter)
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		t.Fatalf("subscribe token %T", tok)
	}
	return st.Result()[filter]
}

func doJSON(t *testing.T, method, addr, path, token string, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func addDeviceREST(t *testing.T, addr, token, id string) string {
	t.Helper()
	var out struct {
		Secret string `json:"secret"`
	}
	if code := doJSON(t, "POST", addr, "/api/devices", token, map[string]string{"id": id}, &out); code != 201 || out.Secret == "" {
		t.Fatalf("POST /api/devices %s = %d", id, code)
	}
	return out.Secret
}

// The attacks of the security issue, against `watchroom serve` with its
// embedded broker and a real PostgreSQL: anonymous clients and devices
// trying to read commands, forge responses, publish for others, stay on
// after revocation, or send an oversize payload.
func TestDeviceIdentityOnEmbeddedBroker(t *testing.T) {
	db := newDB(t)
	addUser(t, db, "ada", "admin", "ada-password")
	addUser(t, db, "olga", "operator", "olga-password")
	mqttPort := mqtttest.FreePort(t)
	env := baseEnv(t, db, "", fmt.Sprintf("WATCHROOM_MQTT_LISTEN=127.0.0.1:%d", mqttPort), "WATCHROOM_COMMAND_TIMEOUT=1500ms")
	srv := startServer(t, env)
	brokerURL := fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort)
	admin := login(t, srv.addr, "ada", "ada-password")
	operator := login(t, srv.addr, "olga", "olga-password")

	// Devices through REST: admins only; the list has no secrets.
	if code := doJSON(t, "POST", srv.addr, "/api/devices", operator, map[string]string{"id": "x"}, nil); code != 403 {
		t.Errorf("operator POST /api/devices = %d, want 403", code)
	}
	secret1 := addDeviceREST(t, srv.addr, admin, "d1")
	secret2 := addDeviceREST(t, srv.addr, admin, "d2")
	if code := doJSON(t, "POST", srv.addr, "/api/devices", admin, map[string]string{"id": "d1"}, nil); code != 409 {
		t.Errorf("second POST of d1 = %d, want 409", code)
	}
	if code := doJSON(t, "POST", srv.addr, "/api/devices", admin, map[string]string{"id": broker.ServiceUser}, nil); code != 400 {
		t.Errorf("POST of the service user's name = %d, want 400", code)
	}
	var list struct {
		Devices []map[string]any `json:"devices"`
	}
	if code := doJSON(t, "GET", srv.addr, "/api/devices", operator, nil, &list); code != 200 || len(list.Devices) != 2 {
		t.Fatalf("GET /api/devices = %d %v", code, list.Devices)
	}
	for _, d := range list.Devices {
		for k, v := range d {
			if s, ok := v.(string); ok && (strings.Contains(s, "$7$") || s == secret1 || s == secret2) || k == "secret" || k == "secret_hash" {
				t.Errorf("GET /api/devices shows %s=%v", k, v)
			}
		}
	}

	if _, err := mqttAs(t, brokerURL, "d1", "wrong", nil); err == nil {
		t.Error("d1 connected with a wrong secret")
	}
	if _, err := mqttAs(t, brokerURL, broker.ServiceUser, "guess", nil); err == nil {
		t.Error("connected as the service user with a guessed password")
	}
	d1 := mustMQTT(t, brokerURL, "d1", secret1, nil)
	d2lost := make(chan error, 1)
	d2 := mustMQTT(t, brokerURL, "d2", secret2, d2lost)
	anon := mustMQTT(t, brokerURL, "", "", nil)

	var d1In, d2In, anonIn inbox
	if q := subscribe(t, d1, "devices/d1/commands", &d1In); q == 0x80 {
		t.Fatal("d1 may not subscribe to its own commands")
	}
	for _, f := range []string{"devices/+/commands", "devices/d1/commands", "#"} {
		if q := subscribe(t, d2, f, &d2In); q != 0x80 {
			t.Errorf("d2 subscribe %s granted QoS %d, want refused", f, q)
		}
		if q := subscribe(t, anon, f, &anonIn); q != 0x80 {
			t.Errorf("anonymous subscribe %s granted QoS %d, want refused", f, q)
		}
	}

	// A command to d1: only d1 hears it. Both others try to forge its
	// outcome; d1 stays silent, so the truth is a timeout.
	ws := connect(t, srv.addr, operator)
	ws.send(map[string]any{"type": "command", "id": "c1", "data": map[string]any{"sensor_id": "d1", "action": "calibrate_sensor", "params": map[string]any{}}})
	var sent struct {
		CommandID string `json:"command_id"`
	}
	if err := json.Unmarshal(ws.nextOf("command_sent", 5*time.Second).Data, &sent); err != nil || sent.CommandID == "" {
		t.Fatalf("command_sent: %v", err)
	}
	forged := fmt.Sprintf(`{"id":%q,"status":"success","message":"forged"}`, sent.CommandID)
	for _, c := range []mqtt.Client{d2, anon} {
		c.Publish("devices/d1/responses", 0, false, forged).WaitTimeout(5 * time.Second)
	}
	var resp struct {
		Status, Message string
	}
	if err := json.Unmarshal(ws.nextOf("command_response", 10*time.Second).Data, &resp); err != nil {
		t.Fatal(err)
	}
	conn := dbConn(t, db)
	defer conn.Close(context.Background())
	var status, message string
	if err := conn.QueryRow(context.Background(), `SELECT status, message FROM commands WHERE id = $1`, sent.CommandID).Scan(&status, &message); err != nil {
		t.Fatal(err)
	}
	if status != "timeout" || resp.Status != "timeout" || strings.Contains(message, "forged") {
		t.Errorf("command outcome: db %s %q, pushed %s; want timeout (responses were forged)", status, message, resp.Status)
	}
	if got := d1In.got(); len(got) != 1 || got[0] != "devices/d1/commands" {
		t.Errorf("d1 received %v, want its command", got)
	}
	if got := append(d2In.got(), anonIn.got()...); len(got) != 0 {
		t.Errorf("d2 and anonymous received %v, want nothing", got)
	}

	// Readings: d2 for itself lands, d2 for d1 does not (QoS 0: dropped;
	// QoS 1 would get it disconnected).
	reading := fmt.Sprintf(`{"value":1.5,"ts":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	d2.Publish("sensors/d1/temperature", 0, false, reading).WaitTimeout(5 * time.Second)
	d2.Publish("sensors/d2/temperature", 1, false, reading).WaitTimeout(5 * time.Second)
	anon.Publish("sensors/anon-1/temperature", 1, false, reading).WaitTimeout(5 * time.Second) // open mode
	waitFor(t, "d2's own reading stored", func() bool { n, _ := countReadings(t, db, "d2"); return n == 1 })
	waitFor(t, "anonymous reading stored (open mode)", func() bool { n, _ := countReadings(t, db, "anon-1"); return n == 1 })
	if n, _ := countReadings(t, db, "d1"); n != 0 {
		t.Errorf("d2 stored %d readings for d1", n)
	}

	// Oversize: the broker drops the connection; nothing is stored.
	big := `{"value":1,"pad":"` + strings.Repeat("x", broker.MaxPacketSize) + `"}`
	d2.Publish("sensors/d2/humidity", 1, false, big).WaitTimeout(5 * time.Second)
	select {
	case <-d2lost:
	case <-time.After(5 * time.Second):
		t.Error("d2 still connected after an oversize publish")
	}
	var nBig int
	_ = conn.QueryRow(context.Background(), `SELECT count(*) FROM readings WHERE sensor_id = 'd2' AND metric = 'humidity'`).Scan(&nBig)
	if nBig != 0 {
		t.Error("oversize reading stored")
	}

	// Revocation through REST disconnects d1 at once and refuses it after.
	d1lost := make(chan error, 1)
	d1 = mustMQTT(t, brokerURL, "d1", secret1, d1lost)
	if code := doJSON(t, "DELETE", srv.addr, "/api/devices/d1", admin, nil, nil); code != 204 {
		t.Fatalf("DELETE /api/devices/d1 = %d", code)
	}
	select {
	case <-d1lost:
	case <-time.After(3 * time.Second):
		t.Error("revoked d1 still connected")
	}
	if _, err := mqttAs(t, brokerURL, "d1", secret1, nil); err == nil {
		t.Error("revoked d1 connected again")
	}

	// Revocation from the command line (another process): the broker's
	// poller disconnects d2 within its cache TTL.
	d2lost = make(chan error, 1)
	mustMQTT(t, brokerURL, "d2", secret2, d2lost)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"device", "revoke", "--id", "d2"}, []string{"WATCHROOM_DATABASE_URL=" + db}, nil, &out, &errOut); err != nil {
		t.Fatalf("device revoke: %v %s", err, errOut.String())
	}
	select {
	case <-d2lost:
	case <-time.After(broker.DefaultAuthCacheTTL + 5*time.Second):
		t.Error("d2 revoked from the command line is still connected")
	}
	if strings.Contains(srv.logs.String(), secret1) || strings.Contains(srv.logs.String(), secret2) {
		t.Error("a device secret reached the log")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The files `device export-mosquitto` writes work with the real Mosquitto:
// a device publishes with its secret, is refused with a wrong one and
// cannot read another device's commands; anonymous clients are refused;
// Watchroom's service user reads everything; the size limit holds.
func TestExportMosquittoWithRealMosquitto(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	db := newDB(t)
	dbEnv := []string{"WATCHROOM_DATABASE_URL=" + db}
	var out, errOut bytes.Buffer
	secrets := map[string]string{}
	for _, id := range []string{"m1", "m2", "gone"} {
		out.Reset()
		if err := run(context.Background(), []string{"device", "add", "--id", id}, dbEnv, nil, &out, &errOut); err != nil {
			t.Fatalf("device add: %v %s", err, errOut.String())
		}
		m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("device add printed no secret: %s", out.String())
		}
		secrets[id] = m[1]
	}
	secret := secrets["m1"]
	if err := run(context.Background(), []string{"device", "revoke", "--id", "gone"}, dbEnv, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	exportEnv := append(dbEnv, "WATCHROOM_MQTT_URL=tcp://watchroom:service-secret@127.0.0.1:1", "WATCHROOM_MQTT_GATEWAY_PASSWORD=gw-secret")
	passwd, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	out.Reset()
	if err := run(context.Background(), []string{"device", "export-mosquitto", "--passwd", passwd, "--acl", acl}, exportEnv, nil, &out, &errOut); err != nil {
		t.Fatalf("export-mosquitto: %v %s", err, errOut.String())
	}
	pw, _ := os.ReadFile(passwd)
	if strings.Contains(string(pw), "gone:") || !strings.Contains(string(pw), "m1:$7$") || strings.Contains(string(pw), "service-secret") {
		t.Errorf("password file:\n%s", pw)
	}

	// The shipped configuration's limits and access settings, with this
	// test's listener and files.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root\n"
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	_ = os.WriteFile(conf, []byte(fmt.Sprintf(`%slistener %d 127.0.0.1
allow_anonymous false
password_file %s
acl_file %s
max_packet_size %d
message_size_limit %d
log_dest file %s/mosquitto.log
`, user, port, passwd, acl, broker.MaxPacketSize, broker.MaxPacketSize, dir)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "mosquitto listening", func() bool {
		_, err := mqttAs(t, url, "watchroom", "service-secret", nil)
		return err == nil
	})
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("mosquitto log:\n%s\nacl:\n%s", tail(string(log), 4000), mustRead(acl))
		}
	}()

	service := mustMQTT(t, url, "watchroom", "service-secret", nil)
	var serviceIn, m2In inbox
	subscribe(t, service, "sensors/#", &serviceIn)
	m2 := mustMQTT(t, url, "m2", secrets["m2"], nil)
	subscribe(t, m2, "devices/+/commands", &m2In)

	if _, err := mqttAs(t, url, "m1", "wrong", nil); err == nil {
		t.Error("m1 connected to Mosquitto with a wrong secret")
	}
	if _, err := mqttAs(t, url, "", "", nil); err == nil {
		t.Error("anonymous client connected to Mosquitto (allow_anonymous false)")
	}
	if _, err := mqttAs(t, url, "gone", "anything", nil); err == nil {
		t.Error("revoked device connected")
	}
	m1lost := make(chan error, 1)
	m1 := mustMQTT(t, url, "m1", secret, m1lost)
	m1.Publish("sensors/m1/temperature", 1, false, `{"value":1}`).WaitTimeout(5 * time.Second)
	m1.Publish("sensors/m2/temperature", 1, false, `{"value":2}`).WaitTimeout(5 * time.Second)
	service.Publish("devices/m1/commands", 1, false, `{"id":"x"}`).WaitTimeout(5 * time.Second)
	gw := mustMQTT(t, url, broker.GatewayUser, "gw-secret", nil)
	gw.Publish("sensors/s-1/temperature", 1, false, `{"value":3}`).WaitTimeout(5 * time.Second)
	waitFor(t, "service user receives m1's and the gateway's readings", func() bool { return len(serviceIn.got()) >= 2 })
	time.Sleep(300 * time.Millisecond)
	got := serviceIn.got()
	if strings.Join(got, ",") != "sensors/m1/temperature,sensors/s-1/temperature" {
		t.Errorf("service user received %v; want m1's own reading and the gateway's, not m1's reading for m2", got)
	}
	if len(m2In.got()) != 0 {
		t.Errorf("m2 received %v, another device's command", m2In.got())
	}
	m1.Publish("sensors/m1/big", 0, false, strings.Repeat("x", broker.MaxPacketSize)).WaitTimeout(5 * time.Second)
	select {
	case <-m1lost:
	case <-time.After(5 * time.Second):
		t.Error("Mosquitto kept m1 connected after a packet over max_packet_size")
	}
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// The simulator answers commands through the embedded broker as the gateway
// user, the way `watchroom demo` runs it.
func TestGatewayAnswersCommandsOnEmbeddedBroker(t *testing.T) {
	db := newDB(t)
	addUser(t, db, "olga", "operator", "olga-password")
	mqttPort := mqtttest.FreePort(t)
	srv := startServer(t, baseEnv(t, db, "", fmt.Sprintf("WATCHROOM_MQTT_LISTEN=127.0.0.1:%d", mqttPort),
		"WATCHROOM_MQTT_GATEWAY_PASSWORD=gw-secret", "WATCHROOM_COMMAND_TIMEOUT=1500ms"))
	runSimulator(t, fmt.Sprintf("tcp://%s:gw-secret@127.0.0.1:%d", broker.GatewayUser, mqttPort))
	ws := connect(t, srv.addr, login(t, srv.addr, "olga", "olga-password"))
	var resp struct{ Status string }
	for attempt := 0; attempt < 5 && resp.Status != "success"; attempt++ {
		ws.send(map[string]any{"type": "command", "id": attempt, "data": map[string]any{"sensor_id": "s-1", "action": "calibrate_sensor", "params": map[string]any{}}})
		m := ws.nextOf("command_response", 10*time.Second)
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatal(err)
		}
		ws.send(map[string]any{"type": "ack", "ref": json.RawMessage(m.ID)})
	}
	if resp.Status != "success" {
		t.Fatalf("command through the gateway: status %s, want success", resp.Status)
	}
	if strings.Contains(srv.logs.String(), "gw-secret") {
		t.Error("the gateway password reached the log")
	}
}
