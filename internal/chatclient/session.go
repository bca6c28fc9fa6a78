package chatclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// Login is the answer of POST /api/login and POST /api/refresh.
type Login struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
}

// APIError is a REST error answer ({"error":{"code","message"}}).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return e.Message
}

// API is the REST side of the server the client needs.
type API struct {
	Base   string // http(s)://host:port, no trailing slash
	Client *http.Client
}

// NewAPI normalises base (a missing scheme means http://).
func NewAPI(base string) (*API, error) {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST:PORT or https://HOST", base)
	}
	return &API{Base: base, Client: &http.Client{Timeout: 15 * time.Second}}, nil
}

func (a *API) do(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Login exchanges a user name and password for a token.
func (a *API) Login(ctx context.Context, user, password string) (Login, error) {
	var l Login
	err := a.do(ctx, http.MethodPost, "/api/login", "", map[string]string{"username": user, "password": password}, &l)
	return l, err
}

// Refresh returns a fresh token for the holder of token.
func (a *API) Refresh(ctx context.Context, token string) (Login, error) {
	var l Login
	err := a.do(ctx, http.MethodPost, "/api/refresh", token, nil, &l)
	return l, err
}

// LiveAlerts loads the open and acknowledged alerts.
func (a *API) LiveAlerts(ctx context.Context, token string) ([]Alert, error) {
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	err := a.do(ctx, http.MethodGet, "/api/alerts?state=live&limit=200", token, nil, &out)
	return out.Alerts, err
}

func (a *API) wsURL() string {
	if rest, ok := strings.CutPrefix(a.Base, "https://"); ok {
		return "wss://" + rest + "/ws"
	}
	return "ws://" + strings.TrimPrefix(a.Base, "http://") + "/ws"
}

// Frame is one /ws message, inner messages of a batch unwrapped.
type Frame struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Events the session hands to the UI (all are tea.Msg values).
type (
	// FrameMsg is a server message.
	FrameMsg struct{ Frame Frame }
	// StateMsg is a change of the connection state.
	StateMsg struct {
		State ConnState
		Err   string        // why the last connection ended, if it did
		Retry time.Duration // wait before the next attempt (StateWaiting)
	}
	// AlertsLoadedMsg is the live alerts loaded over REST on a fresh start
	// or after a failed resume.
	AlertsLoadedMsg struct{ Alerts []Alert }
	// ReloadMsg asks the UI to reload its rooms and the current room: the
	// connection is new (not resumed) or the resume failed.
	ReloadMsg struct{}
	// TokenMsg says the token was refreshed.
	TokenMsg struct{ Login Login }
	// EndedMsg says the session is over (logged out elsewhere, token
	// expired or revoked): log in again.
	EndedMsg struct{ Reason string }
)

// ConnState is what the status line shows.
type ConnState int

const (
	StateConnecting ConnState = iota
	StateOnline
	StateWaiting // disconnected, waiting to retry
	StateEnded
)

func (s ConnState) String() string {
	return [...]string{"connecting", "online", "reconnecting", "signed out"}[s]
}

// Session is one logged-in user's /ws connection, kept open across
// disconnects. Run owns the connection; Send may be called from any
// goroutine. Events go to the channel given to NewSession, in order.
type Session struct {
	api    *API
	events chan<- any

	mu    sync.Mutex // guards login, conn and nextID; held while writing a frame
	login Login
	conn  *websocket.Conn
	seq   int

	// Cursors of what was seen, for resume; touched by Run's goroutine only.
	rooms  map[string]int64
	alerts int64
	direct int64

	done <-chan struct{} // Run's context: closed when the UI stops listening

	// Dial and Sleep are replaced by tests.
	Dial  func(ctx context.Context, url string) (*websocket.Conn, error)
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewSession returns a session for an already obtained token.
func NewSession(api *API, login Login, events chan<- any) *Session {
	return &Session{
		api: api, login: login, events: events, rooms: map[string]int64{},
		Dial: func(ctx context.Context, u string) (*websocket.Conn, error) {
			d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
			c, _, err := d.DialContext(ctx, u, nil)
			return c, err
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
				return nil
			}
		},
	}
}

// Login returns the current token.
func (s *Session) Login() Login {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login
}

var errNotConnected = errors.New("not connected")

// Send sends a request and returns its id ("c1", "c2", …).
func (s *Session) Send(typ string, data any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := "c" + strconv.Itoa(s.seq)
	return id, s.writeLocked(map[string]any{"type": typ, "id": id, "data": data})
}

// SendQuiet sends a message without an id (typing notices).
func (s *Session) SendQuiet(typ string, data any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(map[string]any{"type": typ, "data": data})
}

// writeLocked writes one frame; s.mu must be held (it is the writer lock).
func (s *Session) writeLocked(v any) error {
	if s.conn == nil {
		return errNotConnected
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteJSON(v)
}

// Backoff of reconnects: 0.5 s doubling to 15 s, reset after a connection
// that lasted a minute.
const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 15 * time.Second
)

// Run connects, reconnects with backoff and resumes, until ctx ends or
// the server ends the session (close 4001). It returns nil when ctx ends.
func (s *Session) Run(ctx context.Context) error {
	s.done = ctx.Done()
	wait := backoffMin
	resumed := false // the first connection loads, later ones resume
	go s.refreshLoop(ctx)
	for {
		s.emit(StateMsg{State: StateConnecting})
		start := time.Now()
		err := s.connectOnce(ctx, resumed)
		if ctx.Err() != nil {
			return nil
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4001 {
			s.emit(EndedMsg{Reason: ce.Text})
			return err
		}
		if errors.Is(err, errAuth) {
			s.emit(EndedMsg{Reason: err.Error()})
			return err
		}
		resumed = resumed || errors.Is(err, errAfterAuth)
		if time.Since(start) > time.Minute {
			wait = backoffMin
		}
		s.emit(StateMsg{State: StateWaiting, Err: errText(err), Retry: wait})
		if s.Sleep(ctx, wait) != nil {
			return nil
		}
		wait = min(2*wait, backoffMax)
	}
}

var (
	errAuth      = errors.New("authentication refused")
	errAfterAuth = errors.New("connection lost")
)

func errText(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d %s", ce.Code, ce.Text)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// connectOnce runs one connection. An error wrapping errAfterAuth means it
// was authenticated (the next one may resume).
func (s *Session) connectOnce(ctx context.Context, resume bool) error {
	c, err := s.Dial(ctx, s.api.wsURL())
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetReadLimit(1 << 20)
	tok := s.Login().Token
	auth := map[string]any{"token": tok}
	if resume {
		auth["resume"] = true
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteJSON(map[string]any{"type": "auth", "data": auth}); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	var first Frame
	if err := c.ReadJSON(&first); err != nil {
		return err
	}
	if first.Type != "auth_ok" {
		var d struct{ Message string }
		_ = json.Unmarshal(first.Data, &d)
		return fmt.Errorf("%w: %s", errAuth, d.Message)
	}
	_ = c.SetReadDeadline(time.Time{})
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
	}()
	s.emit(StateMsg{State: StateOnline})
	// A chat client has no use for the stream of readings every
	// connection starts subscribed to.
	if _, err := s.Send("unsubscribe", map[string]any{"sensors": []string{"*"}}); err != nil {
		return fmt.Errorf("%w: %v", errAfterAuth, err)
	}
	if resume {
		if _, err := s.Send("resume", s.resumeData()); err != nil {
			return fmt.Errorf("%w: %v", errAfterAuth, err)
		}
	} else {
		s.reload(ctx)
	}
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("%w: %w", errAfterAuth, err)
		}
		var f Frame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		if f.Type == "batch" {
			var inner []Frame
			if json.Unmarshal(f.Data, &inner) != nil {
				continue
			}
			for _, m := range inner {
				s.handle(ctx, m)
			}
			continue
		}
		s.handle(ctx, f)
	}
}

// reload asks the UI to reload rooms and loads the live alerts, whose
// newest event becomes the alerts cursor of the next resume.
func (s *Session) reload(ctx context.Context) {
	s.emit(ReloadMsg{})
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	alerts, err := s.api.LiveAlerts(lctx, s.Login().Token)
	if err != nil {
		return
	}
	for _, a := range alerts {
		s.alerts = max(s.alerts, a.EventID)
	}
	s.emit(AlertsLoadedMsg{Alerts: alerts})
}

// resumeData is what was seen last per stream. Direct messages are
// acked deliveries (unacked ones come again on connect), so they are
// resumed only from one actually seen, never from 0 (all of them).
func (s *Session) resumeData() map[string]any {
	d := map[string]any{"alerts": s.alerts}
	if s.direct > 0 {
		d["direct"] = s.direct
	}
	if len(s.rooms) > 0 {
		d["rooms"] = s.rooms
	}
	return d
}

// handle tracks the resume cursors, acks what must be acked and passes the
// frame on. Called from Run's goroutine only.
func (s *Session) handle(ctx context.Context, f Frame) {
	switch f.Type {
	case "chat_message":
		var m struct {
			ID   int64  `json:"id"`
			Room string `json:"room"`
		}
		if json.Unmarshal(f.Data, &m) == nil && m.ID > s.rooms[m.Room] {
			s.rooms[m.Room] = m.ID
		}
	case "joined", "history":
		var m struct {
			Room     string `json:"room"`
			History  []struct{ ID int64 }
			Messages []struct{ ID int64 }
		}
		if json.Unmarshal(f.Data, &m) == nil {
			for _, h := range append(m.History, m.Messages...) {
				if h.ID > s.rooms[m.Room] {
					s.rooms[m.Room] = h.ID
				}
			}
			if _, ok := s.rooms[m.Room]; !ok {
				s.rooms[m.Room] = 0
			}
		}
	case "left", "room_deleted":
		var m struct{ Room string }
		if json.Unmarshal(f.Data, &m) == nil {
			delete(s.rooms, m.Room)
		}
	case "alert", "alert_updated":
		var m struct {
			EventID int64 `json:"event_id"`
		}
		if json.Unmarshal(f.Data, &m) == nil && m.EventID > s.alerts {
			s.alerts = m.EventID
		}
	case "direct_message":
		var m struct{ ID int64 }
		if json.Unmarshal(f.Data, &m) == nil && m.ID > s.direct {
			s.direct = m.ID
		}
	case "resume_failed":
		s.reload(ctx)
	}
	if len(f.ID) > 0 {
		s.mu.Lock()
		_ = s.writeLocked(map[string]any{"type": "ack", "ref": f.ID})
		s.mu.Unlock()
	}
	s.emit(FrameMsg{Frame: f})
}

// refreshLoop gets a fresh token a minute before the current one expires
// (or at 80% of its life when that is shorter) and sends it on the open
// connection, so that the server does not close it at expiry.
func (s *Session) refreshLoop(ctx context.Context) {
	for {
		l := s.Login()
		life := time.Until(l.ExpiresAt)
		wait := life - time.Minute
		if life < 5*time.Minute {
			wait = life * 8 / 10
		}
		if s.Sleep(ctx, max(wait, time.Second)) != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		nl, err := s.api.Refresh(rctx, l.Token)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
				return // the socket ends with 4001 too; Run reports it
			}
			if s.Sleep(ctx, 10*time.Second) != nil {
				return
			}
			continue
		}
		s.mu.Lock()
		s.login = nl
		s.seq++
		// Not connected: the next connection authenticates with the new token.
		_ = s.writeLocked(map[string]any{"type": "auth", "id": "c" + strconv.Itoa(s.seq), "data": map[string]string{"token": nl.Token}})
		s.mu.Unlock()
		s.emit(TokenMsg{Login: nl})
	}
}

// emit hands ev to the UI, or drops it once Run has returned.
func (s *Session) emit(ev any) {
	select {
	case s.events <- ev:
	case <-s.done:
	}
}
