package rooms

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
	"github.com/watchroom/watchroom/internal/store"
)

// gatedStore holds each InsertChatMessages call until the test releases
// it, and reports how many messages the call carried.
type gatedStore struct {
	*store.Store
	entered chan int
	release chan struct{}
}

func (g *gatedStore) InsertChatMessages(ctx context.Context, room string, ms []model.ChatMessage) ([]model.ChatMessage, error) {
	g.entered <- len(ms)
	<-g.release
	return g.Store.InsertChatMessages(ctx, room, ms)
}

// Messages sent to a room while one of its batches commits are committed
// together in one statement, by the first of them, and fanned out and
// answered in id order.
func TestChatMessagesSentDuringACommitAreCommittedTogether(t *testing.T) {
	e := newEnv(t)
	g := &gatedStore{Store: e.st, entered: make(chan int), release: make(chan struct{})}
	hub, reg := newFakeHub(), prometheus.NewRegistry()
	r := New(Config{Now: e.clock.Now, AfterFunc: e.clock.AfterFunc}, g, hub, nil, reg, nil)
	r.Register(hub)
	for _, u := range []string{"ana", "bob", "cid"} {
		hub.presence.Online(u)
	}
	type result struct {
		content string
		rep     protocol.Reply
		err     error
	}
	results := make(chan result, 6)
	send := func(user, content string) {
		rep, err := hub.call(t, user, model.RoleAnalyst, "chat_message", map[string]string{"room": "general", "content": content})
		results <- result{content, rep, err}
	}
	entered := func() int {
		t.Helper()
		select {
		case n := <-g.entered:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no insert within 10 s")
			return 0
		}
	}
	go send("ana", "m0")
	if n := entered(); n != 1 {
		t.Fatalf("first insert of %d messages, want 1 (a lone message commits at once)", n)
	}
	senders := []string{"bob", "cid", "ana", "bob", "cid"}
	for i, u := range senders {
		go send(u, "m"+string(rune('1'+i)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.postMu.Lock()
		queued := len(r.posting["general"])
		r.postMu.Unlock()
		if queued == len(senders) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages queued within 10 s", queued, len(senders))
		}
		time.Sleep(time.Millisecond)
	}
	g.release <- struct{}{}
	if n := entered(); n != len(senders) {
		t.Fatalf("second insert of %d messages, want the %d queued during the first", n, len(senders))
	}
	g.release <- struct{}{}

	ids := map[string]int64{}
	for range 1 + len(senders) {
		res := <-results
		if res.err != nil || res.rep.Type != "chat_message_sent" {
			t.Fatalf("%s: reply %+v, err %v", res.content, res.rep, res.err)
		}
		ids[res.content] = replyData[struct{ ID int64 }](t, res.rep.Data).ID
	}
	if ids["m0"] != 1 {
		t.Errorf("m0 got id %d, want 1", ids["m0"])
	}
	var fanned []int64
	for _, s := range hub.take() {
		if s.typ != "chat_message" {
			continue
		}
		m := decodeData[model.ChatMessage](t, s)
		if m.ID != ids[m.Content] {
			t.Errorf("%s fanned out with id %d, replied with %d", m.Content, m.ID, ids[m.Content])
		}
		if !slices.Equal(s.users, []string{"ana", "bob", "cid"}) {
			t.Errorf("%s fanned out to %v", m.Content, s.users)
		}
		fanned = append(fanned, m.ID)
	}
	if !slices.Equal(fanned, []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("fanned out ids %v, want 1..6 in order", fanned)
	}
	stored, err := e.st.ChatMessages(t.Context(), "general", 0, 10)
	if err != nil || len(stored) != 6 {
		t.Fatalf("stored %d messages (err %v), want 6", len(stored), err)
	}
	var batches dto.Metric
	if err := r.m.chatBatch.Write(&batches); err != nil {
		t.Fatal(err)
	}
	if h := batches.GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() != 6 {
		t.Errorf("batch histogram: %d batches of %v messages, want 2 of 6", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := testutil.ToFloat64(r.m.chatMessages); got != 6 {
		t.Errorf("chat messages counted %v, want 6", got)
	}
	r.postMu.Lock()
	defer r.postMu.Unlock()
	if len(r.posting) != 0 {
		t.Errorf("queues left after the last batch: %v", r.posting)
	}
}

// BenchmarkChatSend measures chat_message in the rooms package, from the
// request to the reply: validation, the insert into PostgreSQL
// (group-committed per room) and the fan-out to a fake hub, with 4 senders
// per CPU posting to one room at once. Run with
//
//	go test ./internal/rooms -run '^$' -bench ChatSend -benchtime 3s
func BenchmarkChatSend(b *testing.B) {
	e := newEnv(b)
	e.connect("ana", "bob", "cid")
	b.SetParallelism(4)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.hub.call(b, "ana", model.RoleAnalyst, "chat_message", `{"room":"general","content":"hello"}`); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
