package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The contracts in docs/asyncapi.yaml and docs/openapi.yaml against the
// code and the real server: every message type the server routes and
// every registered REST route is described; every example is valid
// against its own schema and is accepted by the server's decoders; and
// every frame and response the real server sends in a session that
// touches each feature conforms to the schema of its type or route.
// (`make contracts` checks that the documents themselves are valid.)

// loadContract reads a YAML document as JSON values.
func loadContract(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Through JSON: the validator wants JSON types (float64, not int).
	j, _ := json.Marshal(doc)
	doc = nil
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	closeObjects(doc)
	return doc
}

// closeObjects makes every schema that lists properties, and says nothing
// of others, refuse others: JSON Schema allows unlisted properties by
// default, and the documents leave it so for clients (a client ignores a
// field it does not know), but the server must send nothing they do not
// describe, or a field could be added to the code and never to the
// contract (nor, through it, to the dashboard's types.ts).
func closeObjects(v any) {
	switch x := v.(type) {
	case map[string]any:
		if props, ok := x["properties"].(map[string]any); ok && x["additionalProperties"] == nil {
			// A schema, not a message or response that happens to have a
			// "properties" key: its properties are schemas themselves.
			isSchema := true
			for _, p := range props {
				if _, ok := p.(map[string]any); !ok {
					isSchema = false
				}
			}
			if isSchema {
				x["additionalProperties"] = false
			}
		}
		for _, e := range x {
			closeObjects(e)
		}
	case []any:
		for _, e := range x {
			closeObjects(e)
		}
	}
}

type contract struct {
	doc map[string]any
	c   *jsonschema.Compiler
	url string
}

func newContract(t *testing.T, name string) *contract {
	t.Helper()
	k := &contract{doc: loadContract(t, name), c: jsonschema.NewCompiler(), url: "file:///" + name}
	if err := k.c.AddResource(k.url, k.doc); err != nil {
		t.Fatal(err)
	}
	return k
}

// schema compiles the schema at a JSON pointer of the document.
func (k *contract) schema(t *testing.T, pointer string) *jsonschema.Schema {
	t.Helper()
	s, err := k.c.Compile(k.url + "#" + pointer)
	if err != nil {
		t.Fatalf("compile %s: %v", pointer, err)
	}
	return s
}

func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// wsMessages maps each message type to the components/messages keys with
// that name, per direction.
type wsMessages struct {
	client, server map[string]string // type -> component key
}

func asyncMessages(t *testing.T, k *contract) wsMessages {
	t.Helper()
	ops := k.doc["operations"].(map[string]any)
	msgs := k.doc["components"].(map[string]any)["messages"].(map[string]any)
	out := wsMessages{client: map[string]string{}, server: map[string]string{}}
	for _, op := range ops {
		o := op.(map[string]any)
		dst := out.server
		if o["action"] == "receive" {
			dst = out.client
		}
		for _, r := range o["messages"].([]any) {
			key := strings.TrimPrefix(r.(map[string]any)["$ref"].(string), "#/channels/ws/messages/")
			m, ok := msgs[key].(map[string]any)
			if !ok {
				t.Fatalf("operation names message %q that components/messages lacks", key)
			}
			dst[m["name"].(string)] = key
		}
	}
	return out
}

// sourceStrings returns the first group of re over the Go files (tests
// excluded) of the given directories.
func sourceStrings(t *testing.T, re *regexp.Regexp, dirs ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join("..", "..", d, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				seen[m[1]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestAsyncAPICoversEveryRoutedMessage(t *testing.T) {
	k := newContract(t, "asyncapi.yaml")
	ms := asyncMessages(t, k)
	routed := sourceStrings(t, regexp.MustCompile(`(?:\.Handle\(|routes\[)"([a-z_]+)"`),
		"internal/hub", "internal/rooms", "internal/alerts", "internal/devices", "cmd/watchroom")
	if len(routed) < 15 {
		t.Fatalf("found only %d routed types: %v (has the registration changed shape?)", len(routed), routed)
	}
	for _, typ := range routed {
		if _, ok := ms.client[typ]; !ok {
			t.Errorf("the server accepts %q but docs/asyncapi.yaml has no client message for it", typ)
		}
	}
	// Every example validates against its message's payload schema.
	msgs := k.doc["components"].(map[string]any)["messages"].(map[string]any)
	for key, m := range msgs {
		s := k.schema(t, "/components/messages/"+key+"/payload")
		exs, _ := m.(map[string]any)["examples"].([]any)
		if len(exs) == 0 {
			t.Errorf("message %s has no example", key)
		}
		for i, ex := range exs {
			if err := s.Validate(ex.(map[string]any)["payload"]); err != nil {
				t.Errorf("example %d of %s: %v", i, key, err)
			}
		}
	}
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	k := newContract(t, "openapi.yaml")
	paths := k.doc["paths"].(map[string]any)
	re := regexp.MustCompile(`(?:api|f)\.(Get|Post|Put|Delete|Patch)\("(/[^"]*)"`)
	files, _ := filepath.Glob(filepath.Join("..", "..", "internal", "web", "*.go"))
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			path := m[2]
			if path == "/*" { // the dashboard's static files
				continue
			}
			if !strings.HasPrefix(path, "/healthz") && !strings.HasPrefix(path, "/readyz") && !strings.HasPrefix(path, "/ws") {
				path = "/api" + path
			}
			path = regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(path, "{$1}")
			n++
			p, ok := paths[path].(map[string]any)
			if !ok || p[strings.ToLower(m[1])] == nil {
				t.Errorf("route %s %s is registered but not in docs/openapi.yaml", m[1], path)
			}
		}
	}
	if n < 15 {
		t.Fatalf("found only %d routes in internal/web", n)
	}
}

// rawWS records every frame the server sends, as sent.
type rawWS struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	all  []json.RawMessage
	ch   chan wsMsg
}

func rawConnect(t *testing.T, addr, token string) *rawWS {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawWS{t: t, conn: conn, ch: make(chan wsMsg, 10000)}
	go func() {
		defer close(r.ch)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.all = append(r.all, b)
			r.mu.Unlock()
			var m wsMsg
			if json.Unmarshal(b, &m) != nil {
				continue
			}
			if m.Type == "batch" {
				var inner []wsMsg
				_ = json.Unmarshal(m.Data, &inner)
				for _, im := range inner {
					r.ch <- im
				}
				continue
			}
			r.ch <- m
		}
	}()
	r.send(fmt.Sprintf(`{"type":"auth","data":{"token":%q}}`, token))
	r.wait("auth_ok", "")
	return r
}

func (r *rawWS) send(s string) {
	r.t.Helper()
	if err := r.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// wait returns the first message of type typ (and ref, when not empty),
// acking whatever must be acked on the way.
func (r *rawWS) wait(typ, ref string) wsMsg {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-r.ch:
			if !ok {
				r.t.Fatalf("closed while waiting for %s", typ)
			}
			if len(m.ID) > 0 {
				r.send(fmt.Sprintf(`{"type":"ack","ref":%s}`, m.ID))
			}
			if m.Type == typ && (ref == "" || string(m.Ref) == `"`+ref+`"`) {
				return m
			}
			if m.Type == "error" && ref != "" && string(m.Ref) == `"`+ref+`"` {
				r.t.Fatalf("waiting for %s: %s", typ, m.Data)
			}
		case <-deadline:
			r.t.Fatalf("no %s (ref %s) within 15s", typ, ref)
		}
	}
}

// request sends one request and returns its reply of type want.
func (r *rawWS) request(id, body, want string) wsMsg {
	r.t.Helper()
	r.send(body)
	return r.wait(want, id)
}

// TestServerConformsToContracts drives every feature of /ws and REST on
// the real server and validates what comes back.
func TestServerConformsToContracts(t *testing.T) {
	e := alertsEnv(t, "WATCHROOM_COMMAND_TIMEOUT=1s")
	addUser(t, e.db, "root", "admin", "root-password")
	mustPutRules(t, e.srv.addr, e.token, "boiler-1",
		`{"rules":[{"metric":"temperature","kind":"threshold","min":10,"max":90}]}`)
	ann := rawConnect(t, e.srv.addr, login(t, e.srv.addr, "ann", "ann-password"))
	bob := rawConnect(t, e.srv.addr, login(t, e.srv.addr, "bob", "bob-password"))
	root := rawConnect(t, e.srv.addr, login(t, e.srv.addr, "root", "root-password"))
	alice := rawConnect(t, e.srv.addr, e.token)

	ann.request("1", `{"type":"ping","id":"1"}`, "pong")
	ann.request("2", `{"type":"subscribe","id":"2","data":{"sensors":["boiler-1"]}}`, "subscribed")
	ann.request("3", `{"type":"list_rooms","id":"3"}`, "room_list")
	ann.request("4", `{"type":"create_room","id":"4","data":{"room":"ops-night"}}`, "created")
	bob.wait("room_created", "")
	bob.request("5", `{"type":"join_room","id":"5","data":{"room":"ops-night"}}`, "joined")
	ann.wait("user_joined", "")
	ann.request("6", `{"type":"chat_message","id":"6","data":{"room":"ops-night","content":"who is on call?"}}`, "chat_message_sent")
	bob.wait("chat_message", "")
	bob.request("7", `{"type":"typing","id":"7","data":{"room":"ops-night"}}`, "typing_sent")
	ann.wait("user_typing", "")
	ann.request("8", `{"type":"history","id":"8","data":{"room":"ops-night"}}`, "history")
	ann.request("9", `{"type":"direct_message","id":"9","data":{"to":"bob","content":"night shift?"}}`, "direct_message_sent")
	bob.wait("direct_message", "")
	bob.request("10", `{"type":"leave_room","id":"10","data":{"room":"ops-night"}}`, "left")
	ann.wait("user_left", "")
	root.request("11", `{"type":"delete_room","id":"11","data":{"room":"ops-night"}}`, "deleted")
	ann.wait("room_deleted", "")
	ann.request("12", `{"type":"nope","id":"12"}`, "error")
	ann.send(`{not json`)
	ann.wait("error", "")

	// Readings and an alert, acked and resolved.
	pub := publisher(t, e.broker.URL())
	for i := range 3 { // a threshold alert opens after 1 by default; more do not hurt
		publish(t, pub, "sensors/boiler-1/temperature", fmt.Sprintf(`{"value": %g, "unit": "°C"}`, 97.5+float64(i)))
	}
	ann.wait("reading", "")
	am := ann.wait("alert", "")
	var a struct{ ID int64 }
	_ = json.Unmarshal(am.Data, &a)
	ann.request("13", fmt.Sprintf(`{"type":"alert_ack","id":"13","data":{"alert_id":%d}}`, a.ID), "alert_updated")
	ann.request("14", fmt.Sprintf(`{"type":"alert_resolve","id":"14","data":{"alert_id":%d,"note":"fixed"}}`, a.ID), "alert_updated")

	// A command that times out (no device answers).
	alice.request("15", `{"type":"command","id":"15","data":{"sensor_id":"boiler-1","action":"calibrate_sensor","params":{}}}`, "command_sent")
	alice.wait("command_response", "")

	// Rule changes and silences reach every connection.
	mustPutRules(t, e.srv.addr, e.token, "boiler-1",
		`{"rules":[{"metric":"temperature","kind":"threshold","min":10,"max":95}]}`)
	ann.wait("rules_changed", "")
	if code := postJSONTo(t, e.srv.addr, "/api/silences", e.token, `{"sensor_id":"boiler-1","duration_seconds":600,"reason":"contract"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST /api/silences: %d", code)
	}
	bob.wait("silence", "")

	// A fresh token on the open connection, then a resume on a new one.
	var ref struct{ Token string }
	postJSONTo(t, e.srv.addr, "/api/refresh", e.token, "", &ref)
	alice.request("16", fmt.Sprintf(`{"type":"auth","id":"16","data":{"token":%q}}`, ref.Token), "auth_ok")
	ann2 := rawConnect(t, e.srv.addr, login(t, e.srv.addr, "ann", "ann-password"))
	ann2.request("17", `{"type":"resume","id":"17","data":{"rooms":{"general":0},"alerts":0,"direct":0}}`, "resumed")
	ann2.request("18", `{"type":"resume","id":"18","data":{"readings":{"since":"2000-01-01T00:00:00Z"}}}`, "resume_failed")

	// Every client example is accepted by the server's decoders: it may
	// name things that do not exist (not_found, conflict, forbidden), but
	// is never malformed or of an unknown type.
	k := newContract(t, "asyncapi.yaml")
	msgs := k.doc["components"].(map[string]any)["messages"].(map[string]any)
	ms := asyncMessages(t, k)
	probe := rawConnect(t, e.srv.addr, login(t, e.srv.addr, "root", "root-password"))
	for typ, key := range ms.client {
		if typ == "auth" || typ == "ack" || typ == "resume" {
			continue // exercised above with real values
		}
		for i, ex := range msgs[key].(map[string]any)["examples"].([]any) {
			payload := ex.(map[string]any)["payload"].(map[string]any)
			id := fmt.Sprintf("ex-%s-%d", typ, i)
			payload["id"] = id
			b, _ := json.Marshal(payload)
			probe.send(string(b))
			m := probe.waitRef(id, typ)
			if m.Type == "error" {
				var d struct{ Code string }
				_ = json.Unmarshal(m.Data, &d)
				if d.Code == "bad_request" || d.Code == "unknown_type" || d.Code == "invalid_json" {
					t.Errorf("example %d of %s refused by the server: %s", i, typ, m.Data)
				}
			}
		}
	}

	// Every frame the server sent conforms to the schema of its type.
	schemas := map[string]*jsonschema.Schema{}
	for typ, key := range ms.server {
		schemas[typ] = k.schema(t, "/components/messages/"+key+"/payload")
	}
	types := map[string]int{}
	var check func(raw json.RawMessage)
	check = func(raw json.RawMessage) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("frame is not JSON: %s", raw)
			return
		}
		var env struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(raw, &env)
		s, ok := schemas[env.Type]
		if !ok {
			t.Errorf("the server sent %q, which docs/asyncapi.yaml does not describe: %s", env.Type, raw)
			return
		}
		types[env.Type]++
		if err := s.Validate(v); err != nil {
			t.Errorf("%s frame does not conform: %v\n%s", env.Type, err, raw)
		}
		if env.Type == "batch" {
			var b struct{ Data []json.RawMessage }
			_ = json.Unmarshal(raw, &b)
			for _, in := range b.Data {
				check(in)
			}
		}
	}
	for _, c := range []*rawWS{ann, bob, root, alice, ann2, probe} {
		c.mu.Lock()
		for _, raw := range c.all {
			check(raw)
		}
		c.mu.Unlock()
	}
	for _, want := range []string{"auth_ok", "pong", "subscribed", "room_list", "created", "room_created", "joined", "user_joined",
		"chat_message", "chat_message_sent", "typing_sent", "user_typing", "history", "direct_message", "direct_message_sent",
		"left", "user_left", "deleted", "room_deleted", "error", "reading", "alert", "alert_updated", "command_sent",
		"command_response", "resumed", "resume_failed", "rules_changed", "silence"} {
		if types[want] == 0 {
			t.Errorf("no %s frame was checked", want)
		}
	}
	t.Logf("checked frames by type: %v", types)

	checkREST(t, e.srv.addr, e.token, a.ID)
}

// waitRef returns the reply to request id (its own type or an error).
func (r *rawWS) waitRef(id, typ string) wsMsg {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-r.ch:
			if !ok {
				r.t.Fatalf("closed while waiting for the reply to %s", id)
			}
			if len(m.ID) > 0 {
				r.send(fmt.Sprintf(`{"type":"ack","ref":%s}`, m.ID))
			}
			if string(m.Ref) == `"`+id+`"` {
				return m
			}
		case <-deadline:
			r.t.Fatalf("no reply to %s within 10s", id)
		}
	}
}

func postJSONTo(t *testing.T, addr, path, token, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// checkREST calls every route and validates each answer against the
// schema of its path, method and status in docs/openapi.yaml.
func checkREST(t *testing.T, addr, token string, alertID int64) {
	k := newContract(t, "openapi.yaml")
	rootTok := login(t, addr, "root", "root-password")
	type call struct {
		method, path, route, token, body string
	}
	calls := []call{
		{"POST", "/api/login", "/api/login", "", `{"username":"alice","password":"alice-password"}`},
		{"POST", "/api/login", "/api/login", "", `{"username":"alice","password":"wrong"}`},
		{"GET", "/api/me", "/api/me", token, ""},
		{"GET", "/api/me", "/api/me", "", ""},
		{"GET", "/api/sensors", "/api/sensors", token, ""},
		{"GET", "/api/sensors/boiler-1/readings?metric=temperature", "/api/sensors/{id}/readings", token, ""},
		{"GET", "/api/sensors/boiler-1/readings?metric=temperature&bucket=1m", "/api/sensors/{id}/readings", token, ""},
		{"GET", "/api/commands?sensor_id=boiler-1", "/api/commands", token, ""},
		{"GET", "/api/rooms", "/api/rooms", token, ""},
		{"GET", "/api/rooms/general/messages", "/api/rooms/{room}/messages", token, ""},
		{"GET", "/api/rooms/no-such-room/messages", "/api/rooms/{room}/messages", token, ""},
		{"GET", "/api/alerts?state=live,resolved", "/api/alerts", token, ""},
		{"GET", fmt.Sprintf("/api/alerts/%d", alertID), "/api/alerts/{id}", token, ""},
		{"GET", "/api/alerts/999999", "/api/alerts/{id}", token, ""},
		{"GET", "/api/sensors/boiler-1/rules", "/api/sensors/{id}/rules", token, ""},
		{"PUT", "/api/sensors/boiler-1/rules", "/api/sensors/{id}/rules", token, `{"rules":[{"metric":"temperature","kind":"threshold","max":95}]}`},
		{"GET", "/api/silences?active=true", "/api/silences", token, ""},
		{"POST", "/api/silences", "/api/silences", token, `{"sensor_id":"boiler-1","metric":"temperature","kind":"spike","duration_seconds":60}`},
		{"POST", "/api/silences", "/api/silences", token, `{"sensor_id":"boiler-1"}`},
		{"POST", "/api/silences", "/api/silences", login(t, addr, "ann", "ann-password"), `{"sensor_id":"boiler-1","duration_seconds":60}`},
		{"DELETE", "/api/silences/1", "/api/silences/{id}", token, ""},
		{"DELETE", "/api/silences/1", "/api/silences/{id}", token, ""},
		{"DELETE", "/api/silences/999999", "/api/silences/{id}", token, ""},
		{"POST", "/api/devices", "/api/devices", rootTok, `{"id":"pump-7"}`},
		{"POST", "/api/devices", "/api/devices", rootTok, `{"id":"pump-7"}`},
		{"GET", "/api/devices", "/api/devices", token, ""},
		{"DELETE", "/api/devices/pump-7", "/api/devices/{id}", rootTok, ""},
		{"GET", "/api/stats", "/api/stats", token, ""},
		{"GET", "/healthz", "/healthz", "", ""},
		{"GET", "/readyz", "/readyz", "", ""},
		{"POST", "/api/refresh", "/api/refresh", token, ""},
		{"POST", "/api/logout", "/api/logout", login(t, addr, "bob", "bob-password"), ""},
	}
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, "http://"+addr+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		op := fmt.Sprintf("/paths/%s/%s/responses", ptrEscape(c.route), strings.ToLower(c.method))
		responses, _ := lookup(k.doc, op).(map[string]any)
		code := fmt.Sprint(resp.StatusCode)
		r, ok := responses[code].(map[string]any)
		if !ok {
			t.Errorf("%s %s answered %s, not documented in openapi.yaml (%s)", c.method, c.path, code, buf.String())
			continue
		}
		ptr := op + "/" + code
		if rr, ok := r["$ref"].(string); ok {
			ptr = strings.TrimPrefix(rr, "#")
			r = lookup(k.doc, ptr).(map[string]any)
		}
		if r["content"] == nil {
			if buf.Len() > 0 {
				t.Errorf("%s %s %s: documented without a body, got %s", c.method, c.path, code, buf.String())
			}
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Errorf("%s %s %s: body is not JSON: %s", c.method, c.path, code, buf.String())
			continue
		}
		s := k.schema(t, ptr+"/content/application~1json/schema")
		if err := s.Validate(v); err != nil {
			t.Errorf("%s %s %s does not conform: %v\n%s", c.method, c.path, code, err, buf.String())
		}
	}
}

// lookup follows a JSON pointer in doc.
func lookup(doc any, pointer string) any {
	cur := doc
	for _, part := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}
