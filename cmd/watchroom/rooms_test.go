package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// Integration tests of rooms, chat, presence and direct messages: the real
// server over a real database, driven by real WebSocket clients.

// roomClient is a logged-in WebSocket client that keeps every message it
// receives, so a test can look at everything that arrived, not only the
// type it waits for.
type roomClient struct {
	*wsClient
	t    *testing.T
	user string
	seq  int
	seen []wsMsg // received, not yet returned by drain
}

// roomUsers are the accounts of these tests, besides setup's alice
// (operator) and victor (viewer).
var roomUsers = map[string]string{"bob": "analyst", "carol": "analyst", "root": "admin"}

// roomEnv is setup's env with the room users added and their tokens kept:
// a login costs a bcrypt check, slow under -race, and a reconnect within
// the presence grace must not wait for one.
type roomEnv struct {
	*env
	tokens map[string]string
}

func roomSetup(t *testing.T, extra ...string) *roomEnv {
	t.Helper()
	e := &roomEnv{env: setup(t, extra...), tokens: map[string]string{}}
	for u, role := range roomUsers {
		roomAddUser(t, e.db, u, role)
	}
	e.tokens["alice"] = e.token
	return e
}

// roomAddUser stores user with password user+"-password" hashed at
// bcrypt's minimum cost: the login check reads the cost from the hash, and
// at the production cost each login takes seconds under -race.
func roomAddUser(t *testing.T, dbURL, user, role string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(user+"-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)`, user, role, string(hash)); err != nil {
		t.Fatalf("add user %s: %v", user, err)
	}
}

func (e *roomEnv) tokenOf(t *testing.T, user string) string {
	t.Helper()
	if tok, ok := e.tokens[user]; ok {
		return tok
	}
	tok := login(t, e.srv.addr, user, user+"-password")
	e.tokens[user] = tok
	return tok
}

func roomConnect(t *testing.T, e *roomEnv, user string) *roomClient {
	t.Helper()
	return &roomClient{wsClient: connect(t, e.srv.addr, e.tokenOf(t, user)), t: t, user: user}
}

// do sends a request with a fresh id and returns its reply (or error),
// keeping whatever arrived before it.
func (c *roomClient) do(typ string, data any) wsMsg {
	c.t.Helper()
	c.seq++
	id := fmt.Sprintf("%s-%d", c.user, c.seq)
	req := map[string]any{"type": typ, "id": id}
	if data != nil {
		req["data"] = data
	}
	c.send(req)
	want := `"` + id + `"`
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting for the reply to %s", c.user, typ)
			}
			if string(m.Ref) == want {
				return m
			}
			c.seen = append(c.seen, m)
		case <-deadline:
			c.t.Fatalf("%s: no reply to %s within 10s", c.user, typ)
		}
	}
}

// mustDo is do for requests that must succeed with reply type want.
func (c *roomClient) mustDo(typ string, data any, want string) wsMsg {
	c.t.Helper()
	m := c.do(typ, data)
	if m.Type != want {
		c.t.Fatalf("%s: %s answered %s %s, want %s", c.user, typ, m.Type, m.Data, want)
	}
	return m
}

// drain returns everything received so far: it pings and collects what
// comes before the pong. Whatever the server queued for this client before
// the ping is in it.
func (c *roomClient) drain() []wsMsg {
	c.t.Helper()
	c.do("ping", nil)
	out := c.seen
	c.seen = nil
	return out
}

// waitFor returns the first message of type typ matching ok, from what was
// kept or what arrives within d.
func (c *roomClient) waitFor(typ string, ok func(wsMsg) bool, d time.Duration) wsMsg {
	c.t.Helper()
	for i, m := range c.seen {
		if m.Type == typ && ok(m) {
			c.seen = append(c.seen[:i:i], c.seen[i+1:]...)
			return m
		}
	}
	deadline := time.After(d)
	for {
		select {
		case m, open := <-c.msgs:
			if !open {
				c.t.Fatalf("%s: connection closed while waiting for %s", c.user, typ)
			}
			if m.Type == typ && ok(m) {
				return m
			}
			c.seen = append(c.seen, m)
		case <-deadline:
			c.t.Fatalf("%s: no matching %s within %v (got %s)", c.user, typ, d, describe(c.seen))
		}
	}
}

func anyMsg(wsMsg) bool { return true }

// ofType keeps the messages of the given types, leaving out the presence
// announcements of users connecting (reason "online"), which depend on
// the order the test's clients connected in.
func ofType(msgs []wsMsg, types ...string) []wsMsg {
	var out []wsMsg
	for _, m := range msgs {
		if strings.Contains(string(m.Data), `"reason":"online"`) {
			continue
		}
		for _, t := range types {
			if m.Type == t {
				out = append(out, m)
			}
		}
	}
	return out
}

func describe(msgs []wsMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "\n  %s id=%s ref=%s %s", m.Type, m.ID, m.Ref, m.Data)
	}
	return b.String()
}

type chatMsg struct {
	ID      int64  `json:"id"`
	Room    string `json:"room"`
	User    string `json:"user"`
	Content string `json:"content"`
	AlertID *int64 `json:"alert_id"`
	TS      string `json:"ts"`
}

func decodeMsg[T any](t *testing.T, m wsMsg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%s data %s: %v", m.Type, m.Data, err)
	}
	return v
}

func wantErrorReply(t *testing.T, m wsMsg, code, msgPart string) {
	t.Helper()
	var d struct{ Code, Message string }
	_ = json.Unmarshal(m.Data, &d)
	if m.Type != "error" || d.Code != code || !strings.Contains(d.Message, msgPart) {
		t.Errorf("got %s %s, want error %s containing %q", m.Type, m.Data, code, msgPart)
	}
}

func TestRoomsTwoUsersChatInOrder(t *testing.T) {
	e := roomSetup(t)
	alice := roomConnect(t, e, "alice")
	bob := roomConnect(t, e, "bob")
	carol := roomConnect(t, e, "carol")

	created := alice.mustDo("create_room", map[string]string{"room": "ops-night", "kind": "chat"}, "created")
	if !strings.Contains(string(created.Data), `"creator":"alice"`) {
		t.Errorf("created %s", created.Data)
	}
	// Every connected client gets the new room, not the whole list.
	for _, c := range []*roomClient{bob, carol} {
		m := c.waitFor("room_created", anyMsg, 5*time.Second)
		if !strings.Contains(string(m.Data), `"room":"ops-night"`) || strings.Contains(string(m.Data), `"rooms"`) {
			t.Errorf("%s: room_created %s, want ops-night alone", c.user, m.Data)
		}
	}
	joined := bob.mustDo("join_room", map[string]string{"room": "ops-night"}, "joined")
	jd := decodeMsg[struct {
		Room    string
		Members []struct {
			User   string
			Online bool
		}
		History []chatMsg
	}](t, joined)
	if jd.Room != "ops-night" || len(jd.Members) != 2 || !jd.Members[0].Online || !jd.Members[1].Online || jd.History == nil {
		t.Errorf("joined = %s; want alice and bob online, empty history", joined.Data)
	}
	alice.waitFor("user_joined", func(m wsMsg) bool { return strings.Contains(string(m.Data), `"user":"bob"`) }, 5*time.Second)

	// They take turns; each message is acknowledged to its sender by
	// chat_message_sent with the request's ref.
	var want []string
	for i := range 6 {
		from := alice
		if i%2 == 1 {
			from = bob
		}
		text := fmt.Sprintf("message %d from %s <b>not bold</b>", i, from.user)
		sent := from.mustDo("chat_message", map[string]string{"room": "ops-night", "content": "  " + text + "  "}, "chat_message_sent")
		if d := decodeMsg[chatMsg](t, sent); d.ID != int64(i+1) || d.Room != "ops-night" {
			t.Errorf("chat_message_sent %s, want id %d", sent.Data, i+1)
		}
		want = append(want, from.user+": "+text)
	}
	for _, c := range []*roomClient{alice, bob} {
		var got []string
		var lastID int64
		for _, m := range ofType(c.drain(), "chat_message") {
			d := decodeMsg[chatMsg](t, m)
			if d.ID <= lastID {
				t.Errorf("%s: id %d after %d", c.user, d.ID, lastID)
			}
			lastID = d.ID
			got = append(got, d.User+": "+d.Content)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s saw:\n%s\nwant each message once, in order:\n%s", c.user, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if extra := ofType(carol.drain(), "chat_message", "user_joined"); len(extra) != 0 {
		t.Errorf("carol, not a member, got %s", describe(extra))
	}

	// The same conversation over REST, stored as sent.
	var page struct {
		Messages []chatMsg `json:"messages"`
	}
	if code := getJSON(t, e.srv.addr, "/api/rooms/ops-night/messages", e.token, &page); code != 200 || len(page.Messages) != 6 || page.Messages[0].Content != "message 0 from alice <b>not bold</b>" {
		t.Errorf("GET messages = %d %+v", code, page.Messages)
	}
	var list struct {
		Rooms []struct {
			Room            string
			Members, Online int
			Member          *bool
		} `json:"rooms"`
	}
	getJSON(t, e.srv.addr, "/api/rooms", e.token, &list)
	found := false
	for _, r := range list.Rooms {
		if r.Room == "ops-night" {
			found = true
			if r.Members != 2 || r.Online != 2 || r.Member == nil || !*r.Member {
				t.Errorf("GET /api/rooms: ops-night %+v, want 2 members, 2 online, alice a member", r)
			}
		}
	}
	if !found {
		t.Errorf("GET /api/rooms lacks ops-night: %+v", list.Rooms)
	}
}

func TestRoomsHistoryPagination(t *testing.T) {
	e := roomSetup(t, "WATCHROOM_WS_RATE=1000", "WATCHROOM_WS_BURST=1000")
	alice := roomConnect(t, e, "alice")
	const n = 130
	for i := 1; i <= n; i++ {
		alice.mustDo("chat_message", map[string]string{"room": "general", "content": fmt.Sprint("m", i)}, "chat_message_sent")
	}
	alice.drain()

	// join_room carries the newest 50.
	victor := roomConnect(t, e, "victor")
	jd := decodeMsg[struct{ History []chatMsg }](t, victor.mustDo("join_room", map[string]string{"room": "general"}, "joined"))
	if len(jd.History) != 50 || jd.History[0].ID != n-49 || jd.History[49].ID != n {
		t.Fatalf("joined history: %d messages from %d; want the newest 50", len(jd.History), jd.History[0].ID)
	}

	// history, backwards page by page from the oldest id seen.
	var all []int64
	before := int64(0)
	for pages := 0; pages < 10; pages++ {
		data := map[string]any{"room": "general", "limit": 40}
		if before > 0 {
			data["before"] = before
		}
		h := decodeMsg[struct {
			Room     string
			Messages []chatMsg
		}](t, victor.mustDo("history", data, "history"))
		if h.Room != "general" {
			t.Errorf("history room %q", h.Room)
		}
		if len(h.Messages) == 0 {
			break
		}
		ids := make([]int64, len(h.Messages))
		for i, m := range h.Messages {
			ids[i] = m.ID
			if m.Content != fmt.Sprint("m", m.ID) {
				t.Errorf("message %d content %q", m.ID, m.Content)
			}
		}
		all = append(ids, all...)
		before = ids[0]
	}
	if len(all) != n {
		t.Fatalf("paged through %d messages, want %d", len(all), n)
	}
	for i, id := range all {
		if id != int64(i+1) {
			t.Fatalf("ids after paging: %v, want 1..%d in order, each once", all, n)
		}
	}

	// REST pages the same way.
	var page struct {
		Messages []chatMsg `json:"messages"`
	}
	getJSON(t, e.srv.addr, "/api/rooms/general/messages?before=31&limit=100", e.token, &page)
	if len(page.Messages) != 30 || page.Messages[0].ID != 1 || page.Messages[29].ID != 30 {
		t.Errorf("REST before=31: %d messages", len(page.Messages))
	}
	wantErrorReply(t, victor.do("history", map[string]any{"room": "general", "limit": 101}), "bad_request", "limit must be 1 to 100")
}

func TestRoomsNotificationsReachTheRightPeople(t *testing.T) {
	e := roomSetup(t)
	alice := roomConnect(t, e, "alice")
	bob := roomConnect(t, e, "bob")
	carol := roomConnect(t, e, "carol")
	alice.mustDo("create_room", map[string]string{"room": "ops"}, "created")
	for _, c := range []*roomClient{alice, bob, carol} {
		c.waitFor("room_created", anyMsg, 5*time.Second)
	}

	type expect struct {
		c     *roomClient
		types []string // what c must have received, in order
	}
	steps := []struct {
		name  string
		act   func()
		check []expect
	}{
		{"bob joins", func() { bob.mustDo("join_room", map[string]string{"room": "ops"}, "joined") },
			[]expect{{alice, []string{"user_joined"}}, {bob, nil}, {carol, nil}}},
		{"bob types", func() {
			// As browsers do: no id, no reply. The ping after it returns once
			// the typing notice has been handled.
			bob.send(map[string]any{"type": "typing", "data": map[string]string{"room": "ops"}})
			bob.do("ping", nil)
		},
			[]expect{{alice, []string{"user_typing"}}, {bob, nil}, {carol, nil}}},
		{"bob types again at once: throttled", func() {
			bob.mustDo("typing", map[string]string{"room": "ops"}, "typing_sent")
		}, []expect{{alice, nil}, {bob, nil}, {carol, nil}}},
		{"alice types in general: everyone else", func() { alice.mustDo("typing", map[string]string{"room": "general"}, "typing_sent") },
			[]expect{{alice, nil}, {bob, []string{"user_typing"}}, {carol, []string{"user_typing"}}}},
		{"alice posts in ops", func() {
			alice.mustDo("chat_message", map[string]string{"room": "ops", "content": "hi"}, "chat_message_sent")
		}, []expect{{alice, []string{"chat_message"}}, {bob, []string{"chat_message"}}, {carol, nil}}},
		{"bob leaves", func() { bob.mustDo("leave_room", map[string]string{"room": "ops"}, "left") },
			[]expect{{alice, []string{"user_left"}}, {bob, nil}, {carol, nil}}},
		{"alice posts in ops again", func() {
			alice.mustDo("chat_message", map[string]string{"room": "ops", "content": "alone"}, "chat_message_sent")
		}, []expect{{alice, []string{"chat_message"}}, {bob, nil}, {carol, nil}}},
		{"carol joins, root deletes", func() {
			carol.mustDo("join_room", map[string]string{"room": "ops"}, "joined")
			root := roomConnect(t, e, "root")
			root.mustDo("delete_room", map[string]string{"room": "ops"}, "deleted")
		}, []expect{
			{alice, []string{"user_joined", "room_deleted"}},
			{bob, []string{"room_deleted"}},
			{carol, []string{"room_deleted"}},
		}},
	}
	kinds := []string{"user_joined", "user_left", "user_typing", "chat_message", "room_deleted", "room_created", "room_list"}
	for _, s := range steps {
		s.act()
		for _, x := range s.check {
			var got []string
			for _, m := range ofType(x.c.drain(), kinds...) {
				got = append(got, m.Type)
			}
			if strings.Join(got, " ") != strings.Join(x.types, " ") {
				t.Errorf("%s: %s got [%s], want [%s]", s.name, x.c.user, strings.Join(got, " "), strings.Join(x.types, " "))
			}
		}
	}
}

func TestRoomsDirectMessageToOfflineUserArrivesOnceAfterAck(t *testing.T) {
	e := roomSetup(t)
	alice := roomConnect(t, e, "alice")
	sent := alice.mustDo("direct_message", map[string]string{"to": "bob", "content": "call me <3"}, "direct_message_sent")
	sd := decodeMsg[struct {
		ID int64
		To string
	}](t, sent)
	if sd.ID == 0 || sd.To != "bob" {
		t.Errorf("direct_message_sent %s", sent.Data)
	}
	// The sender's own copy, acked like any delivery.
	own := alice.waitFor("direct_message", anyMsg, 5*time.Second)
	if len(own.ID) == 0 || !strings.Contains(string(own.Data), `"from":"alice"`) {
		t.Errorf("sender copy %s id %s", own.Data, own.ID)
	}
	alice.send(map[string]any{"type": "ack", "ref": json.RawMessage(own.ID)})
	wantErrorReply(t, alice.do("direct_message", map[string]string{"to": "nobody", "content": "hi"}), "not_found", `no user "nobody"`)

	type dm struct {
		ID                int64
		From, To, Content string
		TS                string
	}
	// bob connects: the message is there; he does not ack and drops.
	bob1 := roomConnect(t, e, "bob")
	first := bob1.waitFor("direct_message", anyMsg, 5*time.Second)
	d := decodeMsg[dm](t, first)
	if len(first.ID) == 0 || d.ID != sd.ID || d.From != "alice" || d.To != "bob" || d.Content != "call me <3" || d.TS == "" {
		t.Fatalf("bob got %s id %s", first.Data, first.ID)
	}
	bob1.conn.Close()

	// Unacked: delivered again, same message; this time acked.
	bob2 := roomConnect(t, e, "bob")
	again := bob2.waitFor("direct_message", anyMsg, 5*time.Second)
	if string(again.ID) != string(first.ID) || decodeMsg[dm](t, again).ID != d.ID {
		t.Fatalf("redelivery id %s data %s, want id %s", again.ID, again.Data, first.ID)
	}
	bob2.send(map[string]any{"type": "ack", "ref": json.RawMessage(again.ID)})
	if extra := ofType(bob2.drain(), "direct_message", "error"); len(extra) != 0 {
		t.Errorf("bob2 also got %s", describe(extra))
	}
	bob2.conn.Close()

	// Acked: never again.
	bob3 := roomConnect(t, e, "bob")
	if extra := ofType(bob3.drain(), "direct_message"); len(extra) != 0 {
		t.Errorf("after the ack bob got %s", describe(extra))
	}
	// Nor for alice, who acked her copy.
	alice2 := roomConnect(t, e, "alice")
	if extra := ofType(alice2.drain(), "direct_message"); len(extra) != 0 {
		t.Errorf("after her ack alice got %s", describe(extra))
	}
}

func TestRoomsPermissionsAndValidation(t *testing.T) {
	e := roomSetup(t)
	alice := roomConnect(t, e, "alice")
	victor := roomConnect(t, e, "victor")
	alice.mustDo("create_room", map[string]string{"room": "ops"}, "created")

	tests := []struct {
		name    string
		c       *roomClient
		typ     string
		data    any
		code    string
		message string
	}{
		{"viewer creates a room", victor, "create_room", map[string]string{"room": "mine"}, "forbidden", "create_room needs role analyst"},
		{"viewer posts", victor, "chat_message", map[string]string{"room": "general", "content": "hi"}, "forbidden", "chat_message needs role analyst"},
		{"viewer writes directly", victor, "direct_message", map[string]string{"to": "alice", "content": "hi"}, "forbidden", "needs role analyst"},
		{"viewer deletes", victor, "delete_room", map[string]string{"room": "ops"}, "forbidden", "delete_room needs role admin"},
		{"operator deletes", alice, "delete_room", map[string]string{"room": "ops"}, "forbidden", "delete_room needs role admin"},
		{"name with spaces", alice, "create_room", map[string]string{"room": "ops night"}, "bad_request", `invalid room name "ops night": invalid character ' '`},
		{"name with punctuation", alice, "create_room", map[string]string{"room": "ops!"}, "bad_request", "invalid character '!'"},
		{"name too long", alice, "create_room", map[string]string{"room": strings.Repeat("n", 65)}, "bad_request", "1 to 64 characters"},
		{"name taken", alice, "create_room", map[string]string{"room": "ops"}, "conflict", `room "ops" already exists`},
		{"oversize content", alice, "chat_message", map[string]string{"room": "general", "content": strings.Repeat("x", 2001)}, "bad_request", "content is 2001 characters long; at most 2000"},
		{"blank content", alice, "chat_message", map[string]string{"room": "general", "content": "   "}, "bad_request", "content is empty"},
		{"unknown room", alice, "join_room", map[string]string{"room": "nope"}, "not_found", `no room "nope"`},
		{"leave general", alice, "leave_room", map[string]string{"room": "general"}, "bad_request", "cannot be left"},
		{"viewer joins", victor, "join_room", map[string]string{"room": "ops"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.c.do(tt.typ, tt.data)
			if tt.code == "" {
				if m.Type == "error" {
					t.Errorf("%s: %s", tt.typ, m.Data)
				}
				return
			}
			wantErrorReply(t, m, tt.code, tt.message)
		})
	}
	// A viewer may read: join (above), history, the REST routes.
	victor.mustDo("history", map[string]string{"room": "ops"}, "history")
	vtok := e.tokenOf(t, "victor")
	if code := getJSON(t, e.srv.addr, "/api/rooms/ops/messages", vtok, nil); code != 200 {
		t.Errorf("viewer GET messages = %d", code)
	}
	var apiErr struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := getJSON(t, e.srv.addr, "/api/rooms/ops%20night/messages", vtok, &apiErr); code != 400 || !strings.Contains(apiErr.Error.Message, "invalid character ' '") {
		t.Errorf("GET messages of a bad name = %d %+v", code, apiErr)
	}
	if code := getJSON(t, e.srv.addr, "/api/rooms/nope/messages", vtok, nil); code != 404 {
		t.Errorf("GET messages of an unknown room = %d, want 404", code)
	}
}

func TestRoomsPresenceOfflineAfterGrace(t *testing.T) {
	const grace = time.Second
	e := roomSetup(t, "WATCHROOM_PRESENCE_GRACE="+grace.String())
	alice := roomConnect(t, e, "alice")
	bob := roomConnect(t, e, "bob")
	bobOnline := func(m wsMsg) bool {
		return strings.Contains(string(m.Data), `"user":"bob"`) && strings.Contains(string(m.Data), `"reason":"online"`)
	}
	// bob came online: alice hears it in both rooms they share.
	alice.waitFor("user_joined", bobOnline, 5*time.Second)
	alice.waitFor("user_joined", bobOnline, 5*time.Second)

	// A blip: bob's only connection drops and he is back at once.
	bob.conn.Close()
	bob = roomConnect(t, e, "bob")
	time.Sleep(2 * grace)
	for _, m := range alice.drain() {
		if (m.Type == "user_left" || m.Type == "user_joined") && strings.Contains(string(m.Data), `"user":"bob"`) {
			t.Errorf("a reconnect within the grace sent %s %s", m.Type, m.Data)
		}
	}

	// Gone for longer than the grace: user_left, reason offline, once per room.
	bob.conn.Close()
	start := time.Now()
	offline := func(m wsMsg) bool {
		return strings.Contains(string(m.Data), `"user":"bob"`) && strings.Contains(string(m.Data), `"reason":"offline"`)
	}
	var rooms []string
	for range 2 {
		m := alice.waitFor("user_left", offline, 5*time.Second+grace)
		rooms = append(rooms, decodeMsg[struct{ Room string }](t, m).Room)
	}
	if waited := time.Since(start); waited < grace-100*time.Millisecond {
		t.Errorf("user_left after %v, before the %v grace", waited, grace)
	}
	if strings.Join(rooms, ",") != "alerts,general" && strings.Join(rooms, ",") != "general,alerts" {
		t.Errorf("user_left in rooms %v, want general and alerts", rooms)
	}
	var list struct {
		Rooms []struct {
			Room   string
			Online int
		} `json:"rooms"`
	}
	getJSON(t, e.srv.addr, "/api/rooms", e.token, &list)
	for _, r := range list.Rooms {
		if r.Room == "general" && r.Online != 1 {
			t.Errorf("general online = %d, want 1 (alice)", r.Online)
		}
	}

	// Back: user_joined, reason online.
	roomConnect(t, e, "bob")
	alice.waitFor("user_joined", bobOnline, 5*time.Second)
}
