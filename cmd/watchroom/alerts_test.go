package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// Integration tests of anomaly detection and the alert lifecycle over the
// running server: readings published on a real Mosquitto, alerts stored
// in a real PostgreSQL, delivered to real WebSocket clients in room
// "alerts".

// alertUser is a connected WebSocket client that keeps the messages it
// has not looked at yet, so that waiting for one message does not lose
// another, and acks every message that needs it.
type alertUser struct {
	t       *testing.T
	name    string
	c       *wsClient
	backlog []wsMsg
}

func alertConnect(t *testing.T, addr, name, password string) *alertUser {
	t.Helper()
	return &alertUser{t: t, name: name, c: connect(t, addr, login(t, addr, name, password))}
}

// waitFor returns the first message (seen before or arriving within d)
// for which match is true.
func (u *alertUser) waitFor(d time.Duration, what string, match func(wsMsg) bool) wsMsg {
	u.t.Helper()
	for i, m := range u.backlog {
		if match(m) {
			u.backlog = slices.Delete(u.backlog, i, i+1)
			return m
		}
	}
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-u.c.msgs:
			if !ok {
				u.t.Fatalf("%s: connection closed while waiting for %s", u.name, what)
			}
			if len(m.ID) > 0 {
				u.c.send(map[string]any{"type": "ack", "ref": m.ID})
			}
			if match(m) {
				return m
			}
			if m.Type != "reading" {
				u.backlog = append(u.backlog, m)
			}
		case <-deadline:
			u.t.Fatalf("%s: no %s within %v; other messages: %s", u.name, what, d, summarizeMsgs(u.backlog))
		}
	}
}

func summarizeMsgs(ms []wsMsg) string {
	var b bytes.Buffer
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  %s %s", m.Type, m.Data)
	}
	return b.String()
}

// alert waits for an "alert" message whose alert satisfies match.
func (u *alertUser) alert(d time.Duration, what string, match func(model.Alert) bool) (model.Alert, wsMsg) {
	u.t.Helper()
	var a model.Alert
	m := u.waitFor(d, "alert "+what, func(m wsMsg) bool {
		if m.Type != "alert" {
			return false
		}
		var x model.Alert
		if err := json.Unmarshal(m.Data, &x); err != nil {
			u.t.Fatalf("alert data %s: %v", m.Data, err)
		}
		if !match(x) {
			return false
		}
		a = x
		return true
	})
	if len(m.ID) == 0 {
		u.t.Errorf("%s: alert without a top-level id (it must be acked): %s", u.name, m.Data)
	}
	return a, m
}

// request sends a request with id ref and returns its reply or error.
func (u *alertUser) request(typ, ref string, data any) wsMsg {
	u.t.Helper()
	u.c.send(map[string]any{"type": typ, "id": ref, "data": data})
	want := strconv.Quote(ref)
	return u.waitFor(5*time.Second, "reply to "+typ, func(m wsMsg) bool { return string(m.Ref) == want })
}

func alertOf(t *testing.T, m wsMsg) model.Alert {
	t.Helper()
	var a model.Alert
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatalf("%s data %s: %v", m.Type, m.Data, err)
	}
	return a
}

func wantErrorCode(t *testing.T, m wsMsg, code string) {
	t.Helper()
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(m.Data, &e)
	if m.Type != "error" || e.Code != code || e.Message == "" {
		t.Errorf("got %s %s, want error %s with a message", m.Type, m.Data, code)
	}
}

// putRules sends PUT /api/sensors/{sensor}/rules and returns the status
// and body.
func putRules(t *testing.T, addr, token, sensor, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/api/sensors/"+sensor+"/rules", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT rules: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustPutRules(t *testing.T, addr, token, sensor, body string) {
	t.Helper()
	if code, resp := putRules(t, addr, token, sensor, body); code != http.StatusOK {
		t.Fatalf("PUT rules of %s: %d %s", sensor, code, resp)
	}
}

// alertsEnv is setup() plus two analysts.
func alertsEnv(t *testing.T, extra ...string) *env {
	t.Helper()
	e := setup(t, extra...)
	addUser(t, e.db, "ann", "analyst", "ann-password")
	addUser(t, e.db, "bob", "analyst", "bob-password")
	return e
}

func isAlert(sensor, kind, state string) func(model.Alert) bool {
	return func(a model.Alert) bool { return a.SensorID == sensor && a.Kind == kind && a.State == state }
}

func TestAlertOpensFromMQTTAndIsAckedForEveryone(t *testing.T) {
	e := alertsEnv(t)
	mustPutRules(t, e.srv.addr, e.token, "boiler-1",
		`{"rules":[{"metric":"temperature","kind":"threshold","min":10,"max":90}]}`)
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	bob := alertConnect(t, e.srv.addr, "bob", "bob-password")
	victor := alertConnect(t, e.srv.addr, "victor", "victor-password")
	everyone := []*alertUser{ann, bob, victor}

	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/boiler-1/temperature", `{"value": 97.5, "unit": "°C"}`)

	var opened model.Alert
	for _, u := range everyone {
		a, _ := u.alert(10*time.Second, "opened", isAlert("boiler-1", model.AlertThreshold, model.AlertOpen))
		if a.Metric != "temperature" || a.Value != 97.5 || a.LimitOrScore != 90 || a.Count != 1 ||
			a.Severity != model.SeverityWarning || a.AckedBy != nil || a.ResolvedAt != nil || a.ID == 0 {
			t.Errorf("%s got %+v", u.name, a)
		}
		opened = a
	}

	// Viewers may watch but not act.
	wantErrorCode(t, victor.request("alert_ack", "v1", map[string]any{"alert_id": opened.ID}), "forbidden")
	wantErrorCode(t, victor.request("alert_resolve", "v2", map[string]any{"alert_id": opened.ID, "note": "x"}), "forbidden")

	// One analyst acks: the reply carries the alert, every member sees it.
	rep := ann.request("alert_ack", "a1", map[string]any{"alert_id": opened.ID})
	if got := alertOf(t, rep); rep.Type != "alert_updated" || got.State != model.AlertAcknowledged || got.AckedBy == nil || *got.AckedBy != "ann" {
		t.Fatalf("reply to alert_ack: %s %s", rep.Type, rep.Data)
	}
	for _, u := range everyone {
		a, _ := u.alert(5*time.Second, "acknowledged", isAlert("boiler-1", model.AlertThreshold, model.AlertAcknowledged))
		if a.ID != opened.ID || a.AckedBy == nil || *a.AckedBy != "ann" || !a.UpdatedAt.After(opened.UpdatedAt) && !a.UpdatedAt.Equal(opened.UpdatedAt) {
			t.Errorf("%s saw %+v", u.name, a)
		}
	}

	// Acking again changes nothing and is not broadcast.
	if rep := bob.request("alert_ack", "b0", map[string]any{"alert_id": opened.ID}); rep.Type != "alert_updated" {
		t.Errorf("second ack: %s %s", rep.Type, rep.Data)
	}

	// Another resolves it with a note.
	rep = bob.request("alert_resolve", "b1", map[string]any{"alert_id": opened.ID, "note": "valve stuck, fixed"})
	if got := alertOf(t, rep); rep.Type != "alert_updated" || got.State != model.AlertResolved || *got.ResolvedBy != "bob" || got.ResolvedAt == nil {
		t.Fatalf("reply to alert_resolve: %s %s", rep.Type, rep.Data)
	}
	for _, u := range everyone {
		u.alert(5*time.Second, "resolved", isAlert("boiler-1", model.AlertThreshold, model.AlertResolved))
	}
	for _, u := range everyone {
		for _, m := range u.backlog {
			if m.Type == "alert" {
				t.Errorf("%s got an unexpected alert (the repeated ack must not be broadcast): %s", u.name, m.Data)
			}
		}
	}

	// Lifecycle errors.
	wantErrorCode(t, ann.request("alert_resolve", "a2", map[string]any{"alert_id": opened.ID}), "conflict")
	wantErrorCode(t, ann.request("alert_ack", "a3", map[string]any{"alert_id": opened.ID}), "conflict")
	wantErrorCode(t, ann.request("alert_ack", "a4", map[string]any{"alert_id": 987654}), "not_found")
	wantErrorCode(t, ann.request("alert_ack", "a5", map[string]any{"alert_id": "x"}), "bad_request")

	// REST shows the final state, the note and the discussion.
	ann.c.send(map[string]any{"type": "chat_message", "id": "c1",
		"data": map[string]any{"room": "alerts", "content": "on it", "alert_id": opened.ID}})
	ann.waitFor(5*time.Second, "chat_message", func(m wsMsg) bool { return m.Type == "chat_message" })
	var detail struct {
		Alert    model.Alert         `json:"alert"`
		Note     string              `json:"note"`
		Messages []model.ChatMessage `json:"messages"`
	}
	if code := getJSON(t, e.srv.addr, fmt.Sprintf("/api/alerts/%d", opened.ID), e.token, &detail); code != 200 {
		t.Fatalf("GET /api/alerts/%d: %d", opened.ID, code)
	}
	if detail.Alert.State != model.AlertResolved || *detail.Alert.AckedBy != "ann" || *detail.Alert.ResolvedBy != "bob" ||
		detail.Note != "valve stuck, fixed" || len(detail.Messages) != 1 || detail.Messages[0].Content != "on it" {
		t.Errorf("GET /api/alerts/%d = %+v", opened.ID, detail)
	}
}

func TestRepeatedBreachesUpdateOneAlert(t *testing.T) {
	e := alertsEnv(t)
	mustPutRules(t, e.srv.addr, e.token, "tank-2",
		`{"rules":[{"metric":"level","kind":"threshold","max":100},{"metric":"level","kind":"spike","enabled":false}]}`)
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	pub := publisher(t, e.broker.URL())
	values := []float64{101, 104, 102, 130, 103}
	for _, v := range values {
		publish(t, pub, "sensors/tank-2/level", strconv.FormatFloat(v, 'f', -1, 64))
	}
	// Updates within a second are coalesced; the count stays exact.
	a, _ := ann.alert(10*time.Second, "with count 5", func(a model.Alert) bool {
		return a.SensorID == "tank-2" && a.Count == int64(len(values))
	})
	if a.Value != 130 || a.Severity != model.SeverityCritical || a.State != model.AlertOpen {
		t.Errorf("alert = %+v; want the worst breach, 130, which escalated it to critical (docs/alerts.md)", a)
	}
	var list struct {
		Alerts []model.Alert `json:"alerts"`
	}
	if code := getJSON(t, e.srv.addr, "/api/alerts?sensor_id=tank-2", e.token, &list); code != 200 {
		t.Fatalf("GET /api/alerts: %d", code)
	}
	if len(list.Alerts) != 1 || list.Alerts[0].ID != a.ID || list.Alerts[0].Count != 5 {
		t.Errorf("alerts of tank-2 = %+v; want exactly one, count 5", list.Alerts)
	}
	// Every alert message was about that one alert.
	for _, m := range ann.backlog {
		if m.Type == "alert" && alertOf(t, m).ID != a.ID {
			t.Errorf("a second alert: %s", m.Data)
		}
	}
}

func TestAlertResolvesItself(t *testing.T) {
	e := alertsEnv(t)
	mustPutRules(t, e.srv.addr, e.token, "fan-3",
		`{"rules":[{"metric":"rpm","kind":"threshold","min":500,"max":3000,"resolve_after":5},{"metric":"rpm","kind":"spike","enabled":false}]}`)
	bob := alertConnect(t, e.srv.addr, "bob", "bob-password")
	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/fan-3/rpm", "120")
	opened, _ := bob.alert(10*time.Second, "opened", isAlert("fan-3", model.AlertThreshold, model.AlertOpen))
	if opened.Severity != model.SeverityCritical || opened.LimitOrScore != 500 {
		t.Errorf("opened = %+v; want critical (380 below min, more than 10%% of the range), limit 500", opened)
	}
	for i := range 4 {
		publish(t, pub, "sensors/fan-3/rpm", strconv.Itoa(1500+i))
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range bob.backlog {
		if m.Type == "alert" && alertOf(t, m).State == model.AlertResolved {
			t.Fatalf("resolved after 4 normal readings: %s", m.Data)
		}
	}
	publish(t, pub, "sensors/fan-3/rpm", "1510")
	a, _ := bob.alert(10*time.Second, "resolved", isAlert("fan-3", model.AlertThreshold, model.AlertResolved))
	if a.ID != opened.ID || a.ResolvedBy == nil || *a.ResolvedBy != model.ResolvedBySystem || a.ResolvedAt == nil {
		t.Errorf("resolved = %+v; want the same alert, resolved by system", a)
	}
}

func TestStaleSensorRaisesOfflineAlert(t *testing.T) {
	e := alertsEnv(t)
	// The stale check runs every second; a 1 s limit keeps the test short.
	mustPutRules(t, e.srv.addr, e.token, "door-4", `{"rules":[{"metric":"open","kind":"stale","after_seconds":1}]}`)
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/door-4/open", "0")
	start := time.Now()
	a, _ := ann.alert(10*time.Second, "offline", isAlert("door-4", model.AlertOffline, model.AlertOpen))
	// The silence is counted from when the reading was evaluated, which
	// may come a little before publish returns.
	if since := time.Since(start); since < 900*time.Millisecond {
		t.Errorf("offline after %v, before the 1 s limit", since)
	}
	if a.Metric != "open" || a.Severity != model.SeverityWarning || a.LimitOrScore != 1 || a.Value <= 1 {
		t.Errorf("offline alert = %+v", a)
	}
	// No second alert while it stays silent.
	time.Sleep(2500 * time.Millisecond)
	for _, m := range ann.backlog {
		if m.Type == "alert" {
			t.Errorf("another alert while silent: %s", m.Data)
		}
	}
	publish(t, pub, "sensors/door-4/open", "1")
	r, _ := ann.alert(10*time.Second, "back online", isAlert("door-4", model.AlertOffline, model.AlertResolved))
	if r.ID != a.ID || *r.ResolvedBy != model.ResolvedBySystem {
		t.Errorf("resolved = %+v", r)
	}
}

func TestAlertPermissionsAndRuleErrors(t *testing.T) {
	e := alertsEnv(t)
	viewer := login(t, e.srv.addr, "victor", "victor-password")
	analyst := login(t, e.srv.addr, "ann", "ann-password")
	for _, tc := range []struct {
		name, token, body string
		status            int
		contains          string
	}{
		{"viewer may not change rules", viewer, `{"rules":[]}`, 403, "needs role operator"},
		{"analyst may not change rules", analyst, `{"rules":[]}`, 403, "needs role operator"},
		{"min not below max", e.token, `{"rules":[{"metric":"t","kind":"threshold","min":3,"max":1}]}`, 400, "min (3) must be less than max (1)"},
		{"k not positive", e.token, `{"rules":[{"metric":"t","kind":"spike","k":0}]}`, 400, "k must be greater than 0"},
		{"operator may", e.token, `{"rules":[{"metric":"t","kind":"spike","k":5}]}`, 200, `"k":5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := putRules(t, e.srv.addr, tc.token, "s-1", tc.body)
			if code != tc.status || !bytes.Contains([]byte(body), []byte(tc.contains)) {
				t.Errorf("PUT = %d %s; want %d containing %q", code, body, tc.status, tc.contains)
			}
		})
	}
	var rules struct {
		Rules []model.AlertRule `json:"rules"`
	}
	if code := getJSON(t, e.srv.addr, "/api/sensors/s-1/rules", viewer, &rules); code != 200 || len(rules.Rules) != 1 {
		t.Errorf("GET rules as viewer = %d %+v", code, rules)
	}
	var list struct {
		Alerts []model.Alert `json:"alerts"`
	}
	if code := getJSON(t, e.srv.addr, "/api/alerts?state=open", viewer, &list); code != 200 || list.Alerts == nil {
		t.Errorf("GET /api/alerts as viewer = %d %+v", code, list)
	}
}

// An alert a user saw but did not ack comes again on their next
// connection; after a restart of the server the live alert is updated,
// not opened again.
func TestAlertRedeliveryAndRestart(t *testing.T) {
	e := alertsEnv(t)
	mustPutRules(t, e.srv.addr, e.token, "pump-5",
		`{"rules":[{"metric":"pressure","kind":"threshold","max":8},{"metric":"pressure","kind":"spike","enabled":false}]}`)
	bobToken := login(t, e.srv.addr, "bob", "bob-password")
	bob := connect(t, e.srv.addr, bobToken)
	pub := publisher(t, e.broker.URL())
	publish(t, pub, "sensors/pump-5/pressure", "8.5")
	first := bob.nextOf("alert", 10*time.Second) // not acked
	_ = bob.conn.Close()

	again := connect(t, e.srv.addr, bobToken)
	m := again.nextOf("alert", 10*time.Second)
	if string(m.ID) != string(first.ID) || alertOf(t, m).SensorID != "pump-5" {
		t.Errorf("redelivered %s %s, want id %s", m.ID, m.Data, first.ID)
	}
	again.send(map[string]any{"type": "ack", "ref": m.ID})
	opened := alertOf(t, m)

	e.srv.stop()
	e.srv = startServer(t, e.srv.env)
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	publish(t, pub, "sensors/pump-5/pressure", "8.7")
	a, _ := ann.alert(10*time.Second, "updated", func(a model.Alert) bool { return a.SensorID == "pump-5" && a.Count == 2 })
	if a.ID != opened.ID || a.Value != 8.7 {
		t.Errorf("after restart: %+v; want alert %d updated", a, opened.ID)
	}
	var list struct {
		Alerts []model.Alert `json:"alerts"`
	}
	getJSON(t, e.srv.addr, "/api/alerts?sensor_id=pump-5", e.token, &list)
	if len(list.Alerts) != 1 {
		t.Errorf("alerts of pump-5 after restart = %+v; want one", list.Alerts)
	}
}

// Rules of many sensors set one after the other all apply (the rule cache
// must not keep strings that alias request buffers).
func TestRulesOfManySensorsApply(t *testing.T) {
	e := alertsEnv(t)
	const n = 20
	for i := range n {
		mustPutRules(t, e.srv.addr, e.token, fmt.Sprintf("probe-%d", i), `{"rules":[{"metric":"temperature","kind":"threshold","max":100}]}`)
	}
	ann := alertConnect(t, e.srv.addr, "ann", "ann-password")
	pub := publisher(t, e.broker.URL())
	for i := range n {
		publish(t, pub, fmt.Sprintf("sensors/probe-%d/temperature", i), `{"value":150}`)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		a, _ := ann.alert(10*time.Second, fmt.Sprintf("for the %d probes", n), func(a model.Alert) bool {
			return a.Kind == model.AlertThreshold && !seen[a.SensorID]
		})
		seen[a.SensorID] = true
	}
}
