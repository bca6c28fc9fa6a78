package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
)

// testServer is `watchroom serve` run in-process through run(), against a
// fresh database and a private Mosquitto, listening on a free port.
type testServer struct {
	t      *testing.T
	addr   string
	env    []string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv returns the environment of a test server: a new database, the
// given broker and a free HTTP port. extra entries override.
func baseEnv(t *testing.T, dbURL, mqttURL string, extra ...string) []string {
	t.Helper()
	env := []string{
		"WATCHROOM_DATABASE_URL=" + dbURL,
		"WATCHROOM_MQTT_URL=" + mqttURL,
		fmt.Sprintf("WATCHROOM_HTTP_ADDR=127.0.0.1:%d", mqtttest.FreePort(t)),
		// A port of its own: the default, 127.0.0.1:9090, is one per machine.
		fmt.Sprintf("WATCHROOM_METRICS_ADDR=127.0.0.1:%d", mqtttest.FreePort(t)),
		"WATCHROOM_MQTT_CLIENT_ID=watchroom-test",
		"WATCHROOM_LOG_LEVEL=debug",
	}
	return append(env, extra...)
}

func startServer(t *testing.T, env []string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{t: t, env: env, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	s.addr = strings.TrimPrefix(lookupEnv(env, "WATCHROOM_HTTP_ADDR"), "")
	go func() { s.done <- run(ctx, []string{"serve"}, env, strings.NewReader(""), io.Discard, s.logs) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.logs.String(), 8000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("server exited during start: %v\n%s", err, s.logs.String())
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within 20s\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down as SIGTERM would and waits for it.
func (s *testServer) stop() {
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			s.t.Errorf("server returned %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Errorf("server did not stop within 30s")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func addUser(t testing.TB, dbURL, name, role, password string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"user", "add", "--name", name, "--role", role, "--password-stdin"},
		[]string{"WATCHROOM_DATABASE_URL=" + dbURL}, strings.NewReader(password+"\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("user add %s: %v %s", name, err, errOut.String())
	}
}

func login(t testing.TB, addr, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post("http://"+addr+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Token == "" {
		t.Fatalf("login %s: status %d err %v", user, resp.StatusCode, err)
	}
	return out.Token
}

// getJSON decodes the body of GET path into out, or copies it as is when
// out is a *string.
func getJSON(t *testing.T, addr, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if raw, ok := out.(*string); ok { // the body as sent, not JSON
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		*raw = string(b)
	} else if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

// wsClient is a test WebSocket client that unwraps batch frames.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan wsMsg
	// closeCode is set when the reader sees a close frame.
	closed chan int
}

type wsMsg struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Raw  string          `json:"-"`
}

func dial(t *testing.T, addr, query string) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws"+query, nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 100000), closed: make(chan int, 1)}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c
}

// connect dials and authenticates, and returns once auth_ok arrived.
func connect(t *testing.T, addr, token string) *wsClient {
	t.Helper()
	c := dial(t, addr, "")
	c.send(map[string]any{"type": "auth", "data": map[string]string{"token": token}})
	if m := c.next(5 * time.Second); m.Type != "auth_ok" {
		t.Fatalf("after auth got %s %s", m.Type, m.Data)
	}
	return c
}

func (c *wsClient) readLoop() {
	for {
		kind, b, err := c.conn.ReadMessage()
		if err != nil {
			code := websocket.CloseAbnormalClosure
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			c.closed <- code
			close(c.msgs)
			return
		}
		if kind == websocket.TextMessage && !bytes.HasPrefix(b, []byte("{")) {
			c.msgs <- wsMsg{Raw: string(b)}
			continue
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			c.msgs <- wsMsg{Raw: string(b)}
			continue
		}
		if m.Type == "batch" {
			var inner []wsMsg
			if err := json.Unmarshal(m.Data, &inner); err != nil {
				c.msgs <- wsMsg{Type: "bad_batch", Raw: string(b)}
				continue
			}
			for _, im := range inner {
				c.msgs <- im
			}
			continue
		}
		c.msgs <- m
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// next returns the next message, failing the test after d.
func (c *wsClient) next(d time.Duration) wsMsg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a message")
		}
		return m
	case <-time.After(d):
		c.t.Fatalf("no message within %v", d)
	}
	return wsMsg{}
}

// nextOf skips messages until one of type typ arrives.
func (c *wsClient) nextOf(typ string, d time.Duration) wsMsg {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed while waiting for %s", typ)
			}
			if m.Type == typ {
				return m
			}
		case <-deadline:
			c.t.Fatalf("no %s within %v", typ, d)
		}
	}
}

// closeCode waits for the connection to end and returns its close code.
func (c *wsClient) closeCode(d time.Duration) int {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case code := <-c.closed:
			return code
		case <-c.msgs:
		case <-deadline:
			c.t.Fatalf("connection not closed within %v", d)
			return 0
		}
	}
}

func newDB(t testing.TB) string { return pgtest.NewDatabase(t) }
