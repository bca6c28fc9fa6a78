package chatclient

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// fakeConn records what the model sends.
type fakeConn struct {
	sent  []sent
	quiet []sent
}

type sent struct {
	id, typ string
	data    string
}

func (f *fakeConn) Send(typ string, data any) (string, error) {
	b, _ := json.Marshal(data)
	id := "c" + strconv.Itoa(len(f.sent)+1)
	f.sent = append(f.sent, sent{id, typ, string(b)})
	return id, nil
}

func (f *fakeConn) SendQuiet(typ string, data any) error {
	b, _ := json.Marshal(data)
	f.quiet = append(f.quiet, sent{"", typ, string(b)})
	return nil
}

func (f *fakeConn) last(t *testing.T) sent {
	t.Helper()
	if len(f.sent) == 0 {
		t.Fatal("nothing sent")
	}
	return f.sent[len(f.sent)-1]
}

var clock = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func newMain(t *testing.T, noColor bool) (Model, *fakeConn) {
	t.Helper()
	fc := &fakeConn{}
	m := New(Options{URL: "http://x:1", User: "alice", NoColor: noColor, Now: func() time.Time { return clock }})
	m = m.Attach(Login{User: "alice", Role: "analyst", ExpiresAt: clock.Add(time.Hour)}, fc)
	m = step(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	return m, fc
}

func step(t *testing.T, m Model, msg tea.Msg) Model {
	t.Helper()
	nm, _ := m.Update(msg)
	return nm.(Model)
}

func typeLine(t *testing.T, m Model, s string) Model {
	t.Helper()
	m = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
	return step(t, m, tea.KeyMsg{Type: tea.KeyEnter})
}

func frame(typ, ref, data string) FrameMsg {
	f := Frame{Type: typ, Data: json.RawMessage(data)}
	if ref != "" {
		f.Ref = json.RawMessage(strconv.Quote(ref))
	}
	return FrameMsg{Frame: f}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Command
		err  bool
	}{
		{in: "hello", want: Command{Name: "say", Text: "hello"}},
		{in: "//not a command", want: Command{Name: "say", Text: "/not a command"}},
		{in: "/join ops-night", want: Command{Name: "join", Arg: "ops-night"}},
		{in: "/j #ops", want: Command{Name: "join", Arg: "ops"}},
		{in: "/join", err: true},
		{in: "/join a b", err: true},
		{in: "/create ops", want: Command{Name: "create", Arg: "ops"}},
		{in: "/leave", want: Command{Name: "leave"}},
		{in: "/msg bob can you help?", want: Command{Name: "msg", Arg: "bob", Text: "can you help?"}},
		{in: "/msg", err: true},
		{in: "/ack 17", want: Command{Name: "ack", ID: 17}},
		{in: "/ack #17", want: Command{Name: "ack", ID: 17}},
		{in: "/ack x", err: true},
		{in: "/ack 17 extra", err: true},
		{in: "/resolve 17 valve stuck, fixed", want: Command{Name: "resolve", ID: 17, Text: "valve stuck, fixed"}},
		{in: "/resolve", err: true},
		{in: "/rooms", want: Command{Name: "rooms"}},
		{in: "/q", want: Command{Name: "quit"}},
		{in: "/frobnicate", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCommand(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoginScreenStartsAtPasswordAndHidesIt(t *testing.T) {
	m := New(Options{URL: "http://h:8080", User: "alice", NoColor: true})
	if m.focus != 2 {
		t.Fatalf("focus = %d, want the password field", m.focus)
	}
	m = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s3cret")})
	v := m.View()
	if strings.Contains(v, "s3cret") {
		t.Fatalf("password echoed:\n%s", v)
	}
	if !strings.Contains(v, "http://h:8080") || !strings.Contains(v, "alice") {
		t.Fatalf("url and user not shown:\n%s", v)
	}
	if m.fields[2].Value() != "s3cret" {
		t.Fatalf("password field = %q", m.fields[2].Value())
	}
	// Without a user name the cursor starts there.
	if m := New(Options{}); m.focus != 1 || m.fields[0].Value() != "http://127.0.0.1:8080" {
		t.Fatalf("default focus %d url %q", m.focus, m.fields[0].Value())
	}
}

func TestReloadJoinSwitchAndUnread(t *testing.T) {
	m, fc := newMain(t, true)
	m = step(t, m, ReloadMsg{})
	if len(fc.sent) != 2 || fc.sent[0].typ != "list_rooms" || fc.sent[1].typ != "join_room" {
		t.Fatalf("reload sent %+v", fc.sent)
	}
	m = step(t, m, frame("room_list", fc.sent[0].id, `{"rooms":[{"room":"general","kind":"chat","members":3,"online":2,"member":true},{"room":"alerts","kind":"alerts","members":3,"online":2,"member":true},{"room":"ops","kind":"chat","members":1,"online":0,"member":false}]}`))
	m = step(t, m, frame("joined", fc.sent[1].id, `{"room":"general","members":[{"user":"alice","online":true},{"user":"bob","online":true}],"history":[{"id":1,"room":"general","user":"bob","content":"morning","ts":"2026-11-21T09:00:00Z"}]}`))
	v := m.View()
	for _, want := range []string{"#general", "ops", "1/0", "bob: morning", "2 members, 2 online"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}

	m = typeLine(t, m, "/join ops")
	j := fc.last(t)
	if j.typ != "join_room" || j.data != `{"room":"ops"}` {
		t.Fatalf("sent %+v", j)
	}
	m = step(t, m, frame("joined", j.id, `{"room":"ops","members":[{"user":"alice","online":true},{"user":"carol","online":false}],"history":[]}`))
	if m.current != "ops" {
		t.Fatalf("current = %q after joined", m.current)
	}
	// A message in general while ops is shown: unread.
	m = step(t, m, frame("chat_message", "", `{"id":2,"room":"general","user":"bob","content":"ping","ts":"2026-11-21T10:00:00Z"}`))
	if m.views["general"].unread != 1 {
		t.Fatalf("unread = %d", m.views["general"].unread)
	}
	// The same message again (a replay) is not counted twice.
	m = step(t, m, frame("chat_message", "", `{"id":2,"room":"general","user":"bob","content":"ping","ts":"2026-11-21T10:00:00Z"}`))
	if m.views["general"].unread != 1 || len(m.views["general"].lines) != 2 {
		t.Fatalf("replay duplicated: unread %d lines %d", m.views["general"].unread, len(m.views["general"].lines))
	}
	m = typeLine(t, m, "hi all")
	if s := fc.last(t); s.typ != "chat_message" || s.data != `{"content":"hi all","room":"ops"}` {
		t.Fatalf("sent %+v", s)
	}
	if len(fc.quiet) != 1 || fc.quiet[0].typ != "typing" {
		t.Fatalf("typing notices %+v", fc.quiet)
	}
}

func TestAlertsPaneAckAndResolve(t *testing.T) {
	m, fc := newMain(t, true)
	m = step(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	m = step(t, m, frame("alert", "", `{"id":17,"sensor_id":"boiler-1","metric":"temperature","kind":"threshold","severity":"critical","value":97.5,"limit_or_score":60,"state":"open","opened_at":"2026-11-21T10:00:00Z","updated_at":"2026-11-21T10:00:00Z","count":1,"acked_by":null,"resolved_by":null,"resolved_at":null,"event_id":902}`))
	v := m.View()
	if !strings.Contains(v, "alerts: 1 live") || !strings.Contains(v, "#17 CRITICAL boiler-1/temperature threshold 97.5 (limit 60)") {
		t.Fatalf("alert not shown:\n%s", v)
	}
	m = typeLine(t, m, "/ack 17")
	if s := fc.last(t); s.typ != "alert_ack" || s.data != `{"alert_id":17}` {
		t.Fatalf("sent %+v", s)
	}
	m = step(t, m, frame("alert_updated", fc.last(t).id, `{"id":17,"sensor_id":"boiler-1","metric":"temperature","kind":"threshold","severity":"critical","value":97.5,"limit_or_score":60,"state":"acknowledged","opened_at":"2026-11-21T10:00:00Z","updated_at":"2026-11-21T10:00:04Z","count":1,"acked_by":"alice","resolved_by":null,"resolved_at":null,"event_id":905}`))
	if v := m.View(); !strings.Contains(v, "acknowledged by alice") || !strings.Contains(v, "alert #17 is acknowledged") {
		t.Fatalf("ack not shown:\n%s", v)
	}
	// An older version arriving late does not win.
	m = step(t, m, frame("alert", "", `{"id":17,"severity":"critical","state":"open","updated_at":"2026-11-21T10:00:00Z","event_id":902}`))
	if m.alerts[17].State != "acknowledged" {
		t.Fatalf("older alert replaced newer: %s", m.alerts[17].State)
	}
	m = typeLine(t, m, "/resolve 17 valve fixed")
	if s := fc.last(t); s.typ != "alert_resolve" || s.data != `{"alert_id":17,"note":"valve fixed"}` {
		t.Fatalf("sent %+v", s)
	}
}

func TestDirectMessagesHaveTheirOwnView(t *testing.T) {
	m, fc := newMain(t, true)
	m = step(t, m, frame("direct_message", "", `{"id":55,"from":"bob","to":"alice","content":"night shift?","ts":"2026-11-21T10:05:00Z"}`))
	if v := m.views["@bob"]; v == nil || v.unread != 1 {
		t.Fatalf("dm view %+v", v)
	}
	if strings.Contains(m.View(), "night shift?") {
		t.Fatal("dm shown in the room view")
	}
	m = typeLine(t, m, "/msg bob yes")
	if m.current != "@bob" {
		t.Fatalf("current = %q", m.current)
	}
	if s := fc.last(t); s.typ != "direct_message" || s.data != `{"content":"yes","to":"bob"}` {
		t.Fatalf("sent %+v", s)
	}
	if v := m.View(); !strings.Contains(v, "bob: night shift?") || !strings.Contains(v, "direct: bob") {
		t.Fatalf("dm view:\n%s", v)
	}
	m = step(t, m, tea.KeyMsg{Type: tea.KeyEsc})
	if m.current != "general" {
		t.Fatalf("esc went to %q", m.current)
	}
}

func TestErrorsHelpAndStatus(t *testing.T) {
	m, _ := newMain(t, true)
	m = typeLine(t, m, "/nope")
	m = step(t, m, frame("error", "c9", `{"code":"forbidden","message":"create_room needs role analyst or above; you are viewer"}`))
	m = typeLine(t, m, "/help")
	v := m.View()
	for _, want := range []string{"! unknown command /nope", "! forbidden: create_room needs role analyst", "/resolve ID [NOTE]"} {
		if !strings.Contains(v, want) && !strings.Contains(strings.Join(m.wrapped(), "\n"), want) {
			t.Errorf("lacks %q:\n%s", want, v)
		}
	}
	m = step(t, m, StateMsg{State: StateWaiting, Err: "closed 1001 going away", Retry: 2 * time.Second})
	if v := m.View(); !strings.Contains(v, "disconnected (closed 1001 going away); reconnecting in 2s") {
		t.Fatalf("status:\n%s", v)
	}
	m = step(t, m, StateMsg{State: StateOnline})
	if v := m.View(); !strings.Contains(v, "● online") {
		t.Fatalf("status:\n%s", v)
	}
	m = step(t, m, EndedMsg{Reason: "token expired"})
	if v := m.View(); !strings.Contains(v, "session ended (token expired); log in again") {
		t.Fatalf("ended:\n%s", v)
	}
}

func TestViewFitsTheTerminalAndHonoursNoColor(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 60}} {
		for _, noColor := range []bool{true, false} {
			m, _ := newMain(t, noColor)
			m = step(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			for i := 1; i <= 100; i++ {
				m = step(t, m, frame("chat_message", "", `{"id":`+strconv.Itoa(i)+`,"room":"general","user":"bob","content":"`+strings.Repeat("long words here ", 10)+`","ts":"2026-11-21T10:00:00Z"}`))
			}
			v := m.View()
			lines := strings.Split(v, "\n")
			if len(lines) != size[1] {
				t.Errorf("%v: %d lines, want %d", size, len(lines), size[1])
			}
			for i, l := range lines {
				if w := lipgloss.Width(l); w > size[0] {
					t.Errorf("%v: line %d is %d wide: %q", size, i, w, l)
				}
			}
			if hasColour := strings.Contains(v, "\x1b[38;"); hasColour == noColor {
				t.Errorf("%v noColor=%v: colour codes present = %v", size, noColor, hasColour)
			}
		}
	}
}

func TestScrollBackAsksForOlderHistory(t *testing.T) {
	m, fc := newMain(t, true)
	var hist []string
	for i := 51; i <= 100; i++ {
		hist = append(hist, `{"id":`+strconv.Itoa(i)+`,"room":"general","user":"bob","content":"m`+strconv.Itoa(i)+`","ts":"2026-11-21T10:00:00Z"}`)
	}
	m = step(t, m, frame("joined", "", `{"room":"general","members":[],"history":[`+strings.Join(hist, ",")+`]}`))
	for i := 0; i < 5; i++ {
		m = step(t, m, tea.KeyMsg{Type: tea.KeyPgUp})
	}
	s := fc.last(t)
	if s.typ != "history" || s.data != `{"before":51,"limit":50,"room":"general"}` {
		t.Fatalf("sent %+v", s)
	}
	if !strings.Contains(m.View(), "m51") {
		t.Fatalf("top not shown:\n%s", m.View())
	}
	m = step(t, m, frame("history", s.id, `{"room":"general","messages":[{"id":50,"room":"general","user":"bob","content":"m50","ts":"2026-11-21T10:00:00Z"}]}`))
	if l := m.views["general"].lines[0]; l.id != 50 || !m.views["general"].atStart {
		t.Fatalf("first line %+v atStart %v", l, m.views["general"].atStart)
	}
}
