package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
	"github.com/watchroom/watchroom/internal/store"
)

// wsEnv is an App with the real hub on a real listener.
type wsEnv struct {
	*testEnv
	addr string
}

func newWSEnv(t *testing.T, st *store.Store, allowed []string) *wsEnv {
	t.Helper()
	var h *hub.Hub
	e := newEnv(t, st, func(c *Config) {
		h = hub.New(hub.Config{AuthTimeout: 5 * time.Second}, c.Tokens.(plainSessions), st, c.Registerer,
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		c.Hub = h
		c.AllowedOrigins = allowed
	})
	addr := serve(t, e.app)
	// Cleanups run last-in first-out: the hub closes its connections
	// before the App shuts down.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
	})
	return &wsEnv{testEnv: e, addr: addr}
}

// dial opens /ws with the given Origin ("" for none) and query.
func (e *wsEnv) dial(t *testing.T, origin, query string) (*fws.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := fws.DefaultDialer.DialContext(ctx, "ws://"+e.addr+"/ws"+query, hdr)
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// readMsg reads one JSON frame, unwrapping a batch to its first message.
func readMsg(t *testing.T, ws *fws.Conn) (typ string, data json.RawMessage) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	if m.Type == "batch" {
		var ms []json.RawMessage
		if err := json.Unmarshal(m.Data, &ms); err != nil || len(ms) == 0 {
			t.Fatalf("batch %s: %v", b, err)
		}
		if err := json.Unmarshal(ms[0], &m); err != nil {
			t.Fatalf("batch item %s: %v", ms[0], err)
		}
	}
	return m.Type, m.Data
}

// authenticate sends the first-message auth and expects auth_ok.
func (e *wsEnv) authenticate(t *testing.T, ws *fws.Conn) {
	t.Helper()
	msg := `{"type":"auth","data":{"token":"` + e.token(t, "alice", model.RoleViewer) + `"}}`
	if err := ws.WriteMessage(fws.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write auth: %v", err)
	}
	typ, data := readMsg(t, ws)
	if typ != "auth_ok" || !strings.Contains(string(data), `"user":"alice"`) {
		t.Fatalf("after auth got %s %s, want auth_ok for alice", typ, data)
	}
}

func TestWebSocketOrigins(t *testing.T) {
	t.Parallel()
	st := newStore(t)

	type tcase struct {
		name   string
		origin string // "{self}" is replaced by http://<listener address>
		ok     bool
	}
	groups := []struct {
		name    string
		allowed []string
		cases   []tcase
	}{
		{"same host only", nil, []tcase{
			{"no origin (not a browser)", "", true},
			{"same host", "http://{self}", true},
			{"same host, https", "https://{self}", true},
			{"other site", "https://evil.example.com", false},
			{"same address, other port", "http://127.0.0.1:1", false},
			{"host as userinfo", "http://{self}@evil.example.com", false},
			{"null origin", "null", false},
			{"not a URL", "::", false},
		}},
		{"allow-list", []string{"https://watch.example.com"}, []tcase{
			{"listed origin", "https://watch.example.com", true},
			{"no origin (not a browser)", "", true},
			{"same host", "http://{self}", false},
			{"other scheme", "http://watch.example.com", false},
			{"other port", "https://watch.example.com:8443", false},
			{"suffix", "https://watch.example.com.evil.example", false},
			{"other site", "https://evil.example.com", false},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			e := newWSEnv(t, st, g.allowed)
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					origin := strings.ReplaceAll(tc.origin, "{self}", e.addr)
					ws, resp, err := e.dial(t, origin, "")
					if tc.ok {
						if err != nil {
							t.Fatalf("dial with Origin %q: %v (response %v)", origin, err, statusOf(resp))
						}
						e.authenticate(t, ws)
						return
					}
					if !errors.Is(err, fws.ErrBadHandshake) || resp == nil {
						t.Fatalf("dial with Origin %q: err %v, want a refused handshake", origin, err)
					}
					b, _ := io.ReadAll(resp.Body)
					wantError(t, response{status: resp.StatusCode, header: resp.Header, body: b},
						http.StatusForbidden, "forbidden", "WATCHROOM_ALLOWED_ORIGINS")
				})
			}

			t.Run("plain GET", func(t *testing.T) {
				resp, err := http.Get("http://" + e.addr + "/ws")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				wantError(t, response{status: resp.StatusCode, header: resp.Header, body: b},
					http.StatusUpgradeRequired, "upgrade_required", "WebSocket")
			})

			t.Run("token in the query", func(t *testing.T) {
				ws, resp, err := e.dial(t, "", "?token="+e.token(t, "alice", model.RoleViewer))
				if err != nil {
					t.Fatalf("dial: %v (response %v)", err, statusOf(resp))
				}
				typ, data := readMsg(t, ws)
				if typ != "auth_error" || !strings.Contains(string(data), "URL") {
					t.Errorf("got %s %s, want auth_error about the URL", typ, data)
				}
				_, _, err = ws.ReadMessage()
				var ce *fws.CloseError
				if !errors.As(err, &ce) || ce.Code != protocol.CloseAuthFailed {
					t.Errorf("after auth_error: %v, want close %d", err, protocol.CloseAuthFailed)
				}
			})
		})
	}
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return "none"
	}
	return resp.Status
}
