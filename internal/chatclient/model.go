package chatclient

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Sender is what the model needs of a connection: *Session, or a fake in
// tests.
type Sender interface {
	Send(typ string, data any) (string, error)
	SendQuiet(typ string, data any) error
}

// lineKind decides a line's colour.
type lineKind int

const (
	kindSystem lineKind = iota
	kindError
	kindOwn
	kindOther
	kindDirect
	kindAlert
)

type line struct {
	kind lineKind
	id   int64 // message id within its view; 0 for notices
	ts   time.Time
	user string
	text string
}

// view is a room or a direct conversation ("@bob").
type view struct {
	name    string
	kind    string // chat, alerts; "" for a direct conversation
	members int
	online  int
	member  bool
	unread  int
	lines   []line
	oldest  int64 // smallest message id held, for history paging
	atStart bool  // history reached the room's first message
}

func (v *view) add(l line) bool {
	if l.id > 0 {
		for _, o := range v.lines {
			if o.id == l.id && o.kind != kindSystem && o.kind != kindError {
				return false
			}
		}
		if v.oldest == 0 || l.id < v.oldest {
			v.oldest = l.id
		}
	}
	v.lines = append(v.lines, l)
	if l.id > 0 {
		// History and replays can arrive after live messages: keep ids in order.
		sort.SliceStable(v.lines, func(i, j int) bool {
			a, b := v.lines[i], v.lines[j]
			if a.id > 0 && b.id > 0 {
				return a.id < b.id
			}
			return false
		})
	}
	if len(v.lines) > maxLines {
		v.lines = v.lines[len(v.lines)-maxLines:]
	}
	return true
}

const maxLines = 2000

type screen int

const (
	screenLogin screen = iota
	screenMain
)

// Options are the start values of the login screen.
type Options struct {
	URL     string
	User    string
	NoColor bool
	Now     func() time.Time
	// TokenFile, when set, is where every token obtained is saved
	// (SaveToken), and Saved what LoadToken read from it: a saved token
	// of the same server (and user, when User is set) that is still valid
	// skips the password.
	TokenFile string
	Saved     *Saved
}

// Model is the bubbletea model of `watchroom chat`.
type Model struct {
	st  styles
	now func() time.Time

	screen   screen
	fields   [3]textinput.Model // url, user, password
	focus    int
	loginErr string
	busy     bool

	tokenFile string
	saved     *Saved // to try before asking for the password; nil: none

	me      Login
	conn    Sender
	session *Session
	events  chan any
	cancel  context.CancelFunc

	width, height int
	views         map[string]*view // rooms by name, conversations by "@user"
	current       string
	previous      string // the room to go back to from a conversation
	pending       map[string]string
	alerts        map[int64]Alert
	typing        map[string]map[string]time.Time
	lastTyping    time.Time
	state         ConnState
	stateErr      string
	retry         time.Duration
	scroll        int // lines scrolled back from the bottom
	input         textinput.Model
}

// New returns the model on its login screen.
func New(o Options) Model {
	if o.URL == "" {
		o.URL = "http://127.0.0.1:8080"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := Model{st: newStyles(o.NoColor), now: o.Now, width: 80, height: 24}
	labels := []string{"server ", "user   ", "password "}
	for i := range m.fields {
		f := textinput.New()
		f.Prompt = labels[i] + "› "
		f.CharLimit = 256
		m.fields[i] = f
	}
	m.tokenFile = o.TokenFile
	user := o.User
	if s := o.Saved; s != nil {
		switch api, err := NewAPI(o.URL); {
		case err != nil || api.Base != s.Server:
			m.loginErr = "the saved token is for " + s.Server + ", not this server; log in"
		case user != "" && user != s.User:
			m.loginErr = "the saved token is " + s.User + "'s; log in"
		case !o.Now().Before(s.ExpiresAt):
			user = s.User
			m.loginErr = "the saved token expired; log in"
		default:
			user = s.User
			m.saved = s
			m.busy = true // Init tries it
		}
	}
	m.fields[0].SetValue(o.URL)
	m.fields[1].SetValue(user)
	m.fields[2].EchoMode = textinput.EchoNone
	if user != "" {
		m.focus = 2
	} else {
		m.focus = 1
	}
	m.fields[m.focus].Focus()
	m.input = textinput.New()
	m.input.Prompt = "› "
	m.input.CharLimit = 2000
	m.input.Placeholder = "message, or /help"
	m.resetViews()
	return m
}

func (m *Model) resetViews() {
	m.views = map[string]*view{}
	m.pending = map[string]string{}
	m.alerts = map[int64]Alert{}
	m.typing = map[string]map[string]time.Time{}
	m.current = "general"
	m.previous = "general"
	m.views["general"] = &view{name: "general", kind: "chat", member: true}
}

// Init starts the cursor blink and the clock of the typing notices, and
// tries the saved token if there is one.
func (m Model) Init() tea.Cmd {
	if m.saved != nil {
		return tea.Batch(textinput.Blink, tick(), m.trySaved())
	}
	return tea.Batch(textinput.Blink, tick())
}

// trySaved exchanges the saved token for a fresh one (POST /api/refresh),
// which proves it is still valid: neither expired nor revoked.
func (m Model) trySaved() tea.Cmd {
	s := *m.saved
	return func() tea.Msg {
		api, err := NewAPI(s.Server)
		if err != nil {
			return loginResult{err: err, saved: true}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		l, err := api.Refresh(ctx, s.Token)
		return loginResult{api: api, login: l, err: err, saved: true}
	}
}

type tickMsg time.Time

func tick() tea.Cmd { return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) }) }

type loginResult struct {
	api   *API
	login Login
	err   error
	saved bool // the answer to trySaved, not to a password
}

func waitEvent(ch <-chan any) tea.Cmd {
	return func() tea.Msg { return <-ch }
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tickMsg:
		return m, tick()
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC {
			return m.quit()
		}
		if m.screen == screenLogin {
			return m.updateLogin(msg)
		}
		return m.updateMain(msg)
	case loginResult:
		m.busy = false
		if msg.err != nil {
			m.loginErr = msg.err.Error()
			if msg.saved {
				m.saved = nil
				m.loginErr = "the saved token was not accepted (" + msg.err.Error() + "); log in"
			}
			return m, nil
		}
		return m.start(msg.api, msg.login)
	}
	if m.screen != screenMain {
		return m, nil
	}
	m.handleEvent(msg)
	if m.events != nil {
		if _, ok := msg.(EndedMsg); ok {
			return m, nil
		}
		return m, waitEvent(m.events)
	}
	return m, nil
}

func (m Model) quit() (tea.Model, tea.Cmd) {
	if m.cancel != nil {
		m.cancel()
	}
	return m, tea.Quit
}

func (m Model) updateLogin(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyTab, tea.KeyDown, tea.KeyShiftTab, tea.KeyUp:
		m.fields[m.focus].Blur()
		step := 1
		if k.Type == tea.KeyShiftTab || k.Type == tea.KeyUp {
			step = 2
		}
		m.focus = (m.focus + step) % 3
		m.fields[m.focus].Focus()
		return m, nil
	case tea.KeyEnter:
		if m.busy {
			return m, nil
		}
		if m.focus < 2 {
			m.fields[m.focus].Blur()
			m.focus++
			m.fields[m.focus].Focus()
			return m, nil
		}
		url, user, pw := m.fields[0].Value(), strings.TrimSpace(m.fields[1].Value()), m.fields[2].Value()
		if user == "" || pw == "" {
			m.loginErr = "user name and password are needed"
			return m, nil
		}
		api, err := NewAPI(url)
		if err != nil {
			m.loginErr = err.Error()
			return m, nil
		}
		m.busy, m.loginErr = true, ""
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			l, err := api.Login(ctx, user, pw)
			if err != nil {
				err = fmt.Errorf("login failed: %w", err)
			}
			return loginResult{api: api, login: l, err: err}
		}
	}
	var cmd tea.Cmd
	m.fields[m.focus], cmd = m.fields[m.focus].Update(k)
	return m, cmd
}

// start opens the session after a successful login.
func (m Model) start(api *API, l Login) (tea.Model, tea.Cmd) {
	m.me = l
	m.fields[2].SetValue("") // the password is not kept
	m.screen = screenMain
	m.resetViews()
	m.state = StateConnecting
	m.input.Focus()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.events = make(chan any, 256)
	m.session = NewSession(api, l, m.events)
	m.conn = m.session
	s := m.session
	go func() { _ = s.Run(ctx) }()
	m.saveToken(api.Base, l)
	return m, waitEvent(m.events)
}

// saveToken keeps l in the token file, if there is one, for the next
// start; the user hears when that fails.
func (m *Model) saveToken(server string, l Login) {
	if m.tokenFile == "" {
		return
	}
	if err := SaveToken(m.tokenFile, Saved{Server: server, Login: l}); err != nil {
		m.notice(kindError, "the token was not saved: "+err.Error())
	}
}

// Attach puts the model on its main screen with conn as its connection,
// as after a login: for tests of the update logic.
func (m Model) Attach(me Login, conn Sender) Model {
	m.me, m.conn, m.screen = me, conn, screenMain
	m.input.Focus()
	return m
}

func (m *Model) send(typ string, data any, purpose string) {
	if m.conn == nil {
		return
	}
	id, err := m.conn.Send(typ, data)
	if err != nil {
		m.notice(kindError, "not sent ("+err.Error()+"); wait for the connection to come back")
		return
	}
	if purpose != "" {
		m.pending[id] = purpose
	}
}

func (m *Model) cur() *view {
	v := m.views[m.current]
	if v == nil {
		v = &view{name: m.current}
		m.views[m.current] = v
	}
	return v
}

func (m *Model) notice(kind lineKind, text string) {
	m.cur().add(line{kind: kind, ts: m.now(), text: text})
}

func (m *Model) switchTo(name string) {
	if name == m.current {
		return
	}
	if !strings.HasPrefix(m.current, "@") {
		m.previous = m.current
	}
	m.current = name
	m.cur().unread = 0
	m.scroll = 0
}

func (m Model) updateMain(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEnter:
		text := m.input.Value()
		m.input.SetValue("")
		if strings.TrimSpace(text) == "" {
			return m, nil
		}
		return m.command(text)
	case tea.KeyPgUp:
		m.scroll += m.msgHeight() - 1
		if max := m.maxScroll(); m.scroll >= max {
			m.scroll = max
			m.olderHistory()
		}
		return m, nil
	case tea.KeyPgDown:
		m.scroll = max(0, m.scroll-(m.msgHeight()-1))
		return m, nil
	case tea.KeyTab:
		names := m.viewNames()
		i := slices.Index(names, m.current)
		m.switchTo(names[(i+1)%len(names)])
		return m, nil
	case tea.KeyEsc:
		if strings.HasPrefix(m.current, "@") {
			m.switchTo(m.previous)
		}
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	v := m.input.Value()
	if k.Type == tea.KeyRunes && v != "" && !strings.HasPrefix(v, "/") && !strings.HasPrefix(m.current, "@") &&
		m.conn != nil && m.now().Sub(m.lastTyping) >= 2*time.Second {
		m.lastTyping = m.now()
		_ = m.conn.SendQuiet("typing", map[string]string{"room": m.current})
	}
	return m, cmd
}

func (m *Model) olderHistory() {
	v := m.cur()
	if strings.HasPrefix(v.name, "@") || v.atStart || v.oldest <= 1 {
		return
	}
	m.send("history", map[string]any{"room": v.name, "before": v.oldest, "limit": 50}, "history")
}

func (m Model) command(text string) (tea.Model, tea.Cmd) {
	c, err := ParseCommand(text)
	if err != nil {
		m.notice(kindError, err.Error())
		return m, nil
	}
	switch c.Name {
	case "say":
		if to, ok := strings.CutPrefix(m.current, "@"); ok {
			m.send("direct_message", map[string]string{"to": to, "content": c.Text}, "")
		} else {
			m.send("chat_message", map[string]string{"room": m.current, "content": c.Text}, "")
		}
	case "join":
		if v := m.views[c.Arg]; v != nil && v.member && len(v.lines) > 0 {
			m.switchTo(c.Arg)
			return m, nil
		}
		m.send("join_room", map[string]string{"room": c.Arg}, "switch")
	case "create":
		m.send("create_room", map[string]string{"room": c.Arg, "kind": "chat"}, "switch")
	case "leave":
		room := c.Arg
		if room == "" {
			room = m.current
		}
		if strings.HasPrefix(room, "@") {
			delete(m.views, room)
			m.current = ""
			m.switchTo(m.previous)
			return m, nil
		}
		m.send("leave_room", map[string]string{"room": room}, "")
	case "rooms":
		m.send("list_rooms", nil, "show")
	case "msg":
		name := "@" + c.Arg
		if m.views[name] == nil {
			m.views[name] = &view{name: name}
		}
		m.switchTo(name)
		if c.Text != "" {
			m.send("direct_message", map[string]string{"to": c.Arg, "content": c.Text}, "")
		}
	case "ack":
		m.send("alert_ack", map[string]int64{"alert_id": c.ID}, "")
	case "resolve":
		d := map[string]any{"alert_id": c.ID}
		if c.Text != "" {
			d["note"] = c.Text
		}
		m.send("alert_resolve", d, "")
	case "history":
		m.olderHistory()
	case "help":
		for _, h := range helpText {
			m.notice(kindSystem, h)
		}
	case "quit":
		return m.quit()
	}
	return m, nil
}

// handleEvent applies a session event or server message.
func (m *Model) handleEvent(msg tea.Msg) {
	switch msg := msg.(type) {
	case StateMsg:
		m.state, m.retry = msg.State, msg.Retry
		if msg.Err != "" {
			m.stateErr = msg.Err
		} else if msg.State == StateOnline {
			m.stateErr = ""
		}
	case ReloadMsg:
		m.send("list_rooms", nil, "")
		room := m.current
		if strings.HasPrefix(room, "@") {
			room = m.previous
		}
		m.send("join_room", map[string]string{"room": room}, "")
	case AlertsLoadedMsg:
		m.alerts = map[int64]Alert{}
		for _, a := range msg.Alerts {
			m.alerts[a.ID] = a
		}
	case TokenMsg:
		m.me = msg.Login
		if m.session != nil {
			m.saveToken(m.session.api.Base, msg.Login)
		}
	case EndedMsg:
		m.state = StateEnded
		if m.cancel != nil {
			m.cancel()
		}
		m.screen = screenLogin
		m.loginErr = "session ended (" + msg.Reason + "); log in again"
		m.fields[m.focus].Blur()
		m.focus = 2
		m.fields[2].Focus()
	case FrameMsg:
		m.frame(msg.Frame)
	}
}

func refOf(f Frame) string {
	var s string
	if json.Unmarshal(f.Ref, &s) == nil {
		return s
	}
	return string(f.Ref)
}

func (m *Model) room(name string) *view {
	v := m.views[name]
	if v == nil {
		v = &view{name: name, kind: "chat"}
		m.views[name] = v
	}
	return v
}

func (m *Model) frame(f Frame) {
	ref := refOf(f)
	purpose := m.pending[ref]
	delete(m.pending, ref)
	switch f.Type {
	case "room_list":
		var d struct {
			Rooms []struct {
				Room    string `json:"room"`
				Kind    string `json:"kind"`
				Members int    `json:"members"`
				Online  int    `json:"online"`
				Member  bool   `json:"member"`
			} `json:"rooms"`
		}
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range d.Rooms {
			v := m.room(r.Room)
			v.kind, v.members, v.online, v.member = r.Kind, r.Members, r.Online, r.Member
			seen[r.Room] = true
		}
		for name := range m.views {
			if !strings.HasPrefix(name, "@") && !seen[name] {
				delete(m.views, name)
			}
		}
		if purpose == "show" {
			m.notice(kindSystem, fmt.Sprintf("%d rooms: %s", len(d.Rooms), strings.Join(m.roomSummaries(), ", ")))
		}
	case "room_created":
		var d struct {
			Room    string `json:"room"`
			Kind    string `json:"kind"`
			Creator string `json:"creator"`
			Members int    `json:"members"`
			Online  int    `json:"online"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			v := m.room(d.Room)
			v.kind, v.members, v.online = d.Kind, d.Members, d.Online
			v.member = d.Creator == m.me.User
		}
	case "created":
		var d struct{ Room string }
		if json.Unmarshal(f.Data, &d) == nil {
			v := m.room(d.Room)
			v.member = true
			v.atStart = true
			m.switchTo(d.Room)
			m.notice(kindSystem, "room "+d.Room+" created; you are its first member")
		}
	case "room_deleted":
		var d struct{ Room, By string }
		if json.Unmarshal(f.Data, &d) == nil {
			delete(m.views, d.Room)
			if m.current == d.Room {
				m.current = ""
				m.switchTo("general")
				m.notice(kindSystem, "room "+d.Room+" was deleted by "+d.By)
			}
		}
	case "joined":
		var d struct {
			Room    string `json:"room"`
			Members []struct {
				User   string `json:"user"`
				Online bool   `json:"online"`
			} `json:"members"`
			History []ChatMessage `json:"history"`
		}
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		v := m.room(d.Room)
		v.member, v.members, v.online = true, len(d.Members), 0
		for _, u := range d.Members {
			if u.Online {
				v.online++
			}
		}
		for _, h := range d.History {
			v.add(m.chatLine(h))
		}
		if len(d.History) < 50 {
			v.atStart = true
		}
		if purpose == "switch" {
			m.switchTo(d.Room)
		}
	case "left":
		var d struct{ Room string }
		if json.Unmarshal(f.Data, &d) == nil {
			if v := m.views[d.Room]; v != nil {
				v.member, v.members, v.online, v.lines, v.oldest = false, max(0, v.members-1), max(0, v.online-1), nil, 0
			}
			if m.current == d.Room {
				m.current = ""
				m.switchTo("general")
			}
			m.notice(kindSystem, "you left "+d.Room)
		}
	case "user_joined", "user_left":
		var d struct{ Room, User, Reason string }
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		v := m.room(d.Room)
		verb := "joined"
		switch {
		case f.Type == "user_joined" && d.Reason == "online":
			v.online++
			verb = "is online"
		case f.Type == "user_joined":
			v.members++
			v.online++
		case d.Reason == "offline":
			v.online = max(0, v.online-1)
			verb = "went offline"
		default:
			v.members, v.online = max(0, v.members-1), max(0, v.online-1)
			verb = "left"
		}
		v.add(line{kind: kindSystem, ts: m.now(), text: d.User + " " + verb})
	case "chat_message":
		var c ChatMessage
		if json.Unmarshal(f.Data, &c) != nil {
			return
		}
		v := m.room(c.Room)
		if v.add(m.chatLine(c)) && c.Room != m.current {
			v.unread++
		}
		delete(m.typing[c.Room], c.User)
	case "history":
		var d struct {
			Room     string        `json:"room"`
			Messages []ChatMessage `json:"messages"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			v := m.room(d.Room)
			for _, c := range d.Messages {
				v.add(m.chatLine(c))
			}
			if len(d.Messages) < 50 {
				v.atStart = true
			}
		}
	case "user_typing":
		var d struct{ Room, User string }
		if json.Unmarshal(f.Data, &d) == nil && d.User != m.me.User {
			if m.typing[d.Room] == nil {
				m.typing[d.Room] = map[string]time.Time{}
			}
			m.typing[d.Room][d.User] = m.now()
		}
	case "direct_message":
		var d DirectMsg
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		other := d.From
		if d.From == m.me.User {
			other = d.To
		}
		name := "@" + other
		v := m.views[name]
		if v == nil {
			v = &view{name: name}
			m.views[name] = v
		}
		kind := kindDirect
		if d.From == m.me.User {
			kind = kindOwn
		}
		if v.add(line{kind: kind, id: d.ID, ts: d.TS, user: d.From, text: d.Content}) && name != m.current {
			v.unread++
		}
	case "alert", "alert_updated":
		var a Alert
		if json.Unmarshal(f.Data, &a) != nil {
			return
		}
		if old, ok := m.alerts[a.ID]; ok && old.UpdatedAt.After(a.UpdatedAt) {
			return
		}
		_, known := m.alerts[a.ID]
		m.alerts[a.ID] = a
		switch {
		case f.Type == "alert_updated":
			m.notice(kindSystem, fmt.Sprintf("alert #%d is %s", a.ID, a.State))
		case !known:
			m.room("alerts").add(line{kind: kindAlert, ts: a.UpdatedAt, text: alertText(a)})
			if m.current != "alerts" {
				m.room("alerts").unread++
			}
		}
	case "error":
		var d struct{ Code, Message string }
		_ = json.Unmarshal(f.Data, &d)
		m.notice(kindError, d.Code+": "+d.Message)
	case "resumed":
		var d struct {
			Rooms  map[string]int `json:"rooms"`
			Alerts int            `json:"alerts"`
			Direct int            `json:"direct"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			n := d.Alerts + d.Direct
			for _, c := range d.Rooms {
				n += c
			}
			m.notice(kindSystem, fmt.Sprintf("reconnected; caught up with %d missed messages", n))
		}
	case "resume_failed":
		m.notice(kindSystem, "reconnected; reloading (too much was missed to catch up)")
	}
}

func (m *Model) chatLine(c ChatMessage) line {
	kind := kindOther
	if c.User == m.me.User {
		kind = kindOwn
	}
	text := c.Content
	if c.AlertID != nil {
		text = fmt.Sprintf("[alert #%d] %s", *c.AlertID, text)
	}
	return line{kind: kind, id: c.ID, ts: c.TS, user: c.User, text: text}
}

func alertText(a Alert) string {
	what := fmt.Sprintf("%s %s/%s %s %.4g", strings.ToUpper(a.Severity), a.SensorID, a.Metric, a.Kind, a.Value)
	switch a.Kind {
	case "threshold":
		what += fmt.Sprintf(" (limit %.4g)", a.LimitOrScore)
	case "spike":
		what += fmt.Sprintf(" (%.1fσ)", a.LimitOrScore)
	}
	state := a.State
	if a.AckedBy != nil && a.State == "acknowledged" {
		state += " by " + *a.AckedBy
	}
	if a.ResolvedBy != nil {
		state = "resolved by " + *a.ResolvedBy
	}
	if a.Count > 1 {
		state += fmt.Sprintf(" ×%d", a.Count)
	}
	return fmt.Sprintf("#%d %s · %s", a.ID, what, state)
}

// viewNames lists rooms (fixed ones first, then by name) and then the
// direct conversations.
func (m *Model) viewNames() []string {
	var rooms, dms []string
	for name := range m.views {
		if strings.HasPrefix(name, "@") {
			dms = append(dms, name)
		} else {
			rooms = append(rooms, name)
		}
	}
	rank := func(n string) int {
		switch n {
		case "general":
			return 0
		case "alerts":
			return 1
		}
		return 2
	}
	sort.Slice(rooms, func(i, j int) bool {
		if rank(rooms[i]) != rank(rooms[j]) {
			return rank(rooms[i]) < rank(rooms[j])
		}
		return rooms[i] < rooms[j]
	})
	sort.Strings(dms)
	return append(rooms, dms...)
}

func (m *Model) roomSummaries() []string {
	var out []string
	for _, n := range m.viewNames() {
		v := m.views[n]
		if v.kind == "" {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%d members, %d online)", n, v.members, v.online))
	}
	return out
}

// typers returns who is typing in the current room, seen in the last 4 s.
func (m *Model) typers() []string {
	var out []string
	for u, t := range m.typing[m.current] {
		if m.now().Sub(t) < 4*time.Second {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// liveAlerts returns the alerts to show: unresolved first (critical
// before warning, newest first), then resolved ones, newest first.
func (m *Model) liveAlerts() []Alert {
	out := make([]Alert, 0, len(m.alerts))
	for _, a := range m.alerts {
		out = append(out, a)
	}
	rank := func(a Alert) int {
		switch {
		case a.State == "resolved":
			return 3
		case a.Severity == "critical":
			return 0
		case a.State == "open":
			return 1
		}
		return 2
	}
	sort.Slice(out, func(i, j int) bool {
		if rank(out[i]) != rank(out[j]) {
			return rank(out[i]) < rank(out[j])
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Close ends the session, if one is open.
func (m Model) Close() {
	if m.cancel != nil {
		m.cancel()
	}
}
