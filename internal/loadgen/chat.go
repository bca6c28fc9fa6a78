package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// chatIndex names every message a sender posts: content "lg<run> k seq".
type chatIndex struct {
	prefix string
	sentAt [][]atomic.Int64 // [sender][seq] ns before the write
}

func (x *chatIndex) lookup(content string) (int, int, bool) {
	rest, ok := strings.CutPrefix(content, x.prefix)
	if !ok {
		return 0, 0, false
	}
	ks, ss, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, 0, false
	}
	k, err1 := strconv.Atoi(ks)
	s, err2 := strconv.Atoi(ss)
	if err1 != nil || err2 != nil || k < 0 || k >= len(x.sentAt) || s < 0 || s >= len(x.sentAt[k]) {
		return 0, 0, false
	}
	return k, s, x.sentAt[k][s].Load() != 0
}

// member is one connection in the chat room; its fields belong to its
// reader goroutine until done is closed.
type member struct {
	ws       *websocket.Conn
	done     chan struct{}
	received atomic.Int64
	lat      hist
	stored   int            // chat_message_sent replies (a sender's own posts)
	errs     map[string]int // error replies by code
	closed   string
}

func (m *member) read(ctx context.Context, x *chatIndex) {
	defer close(m.done)
	rctx, cancel := ownContext(ctx)
	defer cancel()
	for {
		_, data, err := m.ws.Read(rctx)
		if err != nil {
			if ctx.Err() == nil {
				m.closed = err.Error()
			}
			return
		}
		recv := time.Now()
		if fs, ok, err := decodeBatch[frame](data, nil); ok {
			if err == nil {
				for _, f := range fs {
					m.handle(x, f, recv)
				}
			}
			continue
		}
		var f frame
		if json.Unmarshal(data, &f) == nil {
			m.handle(x, f, recv)
		}
	}
}

// handle records one message, alone or out of a batch frame.
func (m *member) handle(x *chatIndex, f frame, recv time.Time) {
	switch f.Type {
	case "chat_message":
		var d struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		if k, s, ok := x.lookup(d.Content); ok {
			m.lat.add(recv.Sub(time.Unix(0, x.sentAt[k][s].Load())))
			m.received.Add(1)
		}
	case "chat_message_sent":
		m.stored++
	case "error":
		if strings.HasPrefix(string(f.Ref), `"j`) {
			return // the reply to join_room: general has everyone already
		}
		var d struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(f.Data, &d)
		m.errs[d.Code]++
	}
}

// chat connects M members of the room (the first K post), posts ChatRate
// messages/s in total for D, and waits (up to Drain) until every member
// has every message.
func (r *runner) chat(ctx context.Context) error {
	c := r.cfg
	members := max(c.ChatMembers, c.ChatSenders)
	perSender := int(float64(c.ChatRate) / float64(c.ChatSenders) * c.Duration.Seconds())
	x := &chatIndex{prefix: "lg" + r.id + " ", sentAt: make([][]atomic.Int64, c.ChatSenders)}
	for k := range x.sentAt {
		x.sentAt[k] = make([]atomic.Int64, perSender)
	}
	r.logf("connecting %d chat members", members)
	conns, err := r.connectMany(ctx, members)
	if err != nil {
		return err
	}
	rctx, cancelReaders := context.WithCancel(ctx)
	ms := make([]*member, len(conns))
	for i, ws := range conns {
		ms[i] = &member{ws: ws, done: make(chan struct{}), errs: map[string]int{}}
	}
	defer func() {
		cancelReaders()
		closeAll(conns)
		for _, m := range ms {
			<-m.done
		}
	}()
	// Join the room (a no-op error for general, where everyone is a member).
	for i, m := range ms {
		req := fmt.Sprintf(`{"type":"join_room","id":"j%d","data":{"room":%q}}`, i, c.Room)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := m.ws.Write(wctx, websocket.MessageText, []byte(req))
		cancel()
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	for _, m := range ms {
		go m.read(rctx, x)
	}
	time.Sleep(time.Second)

	r.logf("posting %d messages/s from %d senders to %d members for %v", c.ChatRate, c.ChatSenders, members, c.Duration)
	interval := time.Duration(float64(time.Second) * float64(c.ChatSenders) / float64(c.ChatRate))
	var wg sync.WaitGroup
	var sent atomic.Int64
	start := time.Now()
	for k := range c.ChatSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := ms[k].ws
			// Spread the senders over one interval so they do not post in step.
			t0 := start.Add(interval * time.Duration(k) / time.Duration(c.ChatSenders))
			for s := range perSender {
				if wait := time.Until(t0.Add(time.Duration(s) * interval)); wait > 0 {
					time.Sleep(wait)
				}
				req := fmt.Sprintf(`{"type":"chat_message","id":"c%d","data":{"room":%q,"content":"%s%d %d"}}`, s, c.Room, x.prefix, k, s)
				x.sentAt[k][s].Store(time.Now().UnixNano())
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := ws.Write(wctx, websocket.MessageText, []byte(req))
				cancel()
				if err != nil {
					x.sentAt[k][s].Store(0)
					return
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	want := sent.Load()
	deadline := time.Now().Add(c.Drain)
	for time.Now().Before(deadline) {
		all := true
		for _, m := range ms {
			if m.received.Load() < want {
				select {
				case <-m.done:
				default:
					all = false
				}
			}
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancelReaders()
	for _, m := range ms {
		<-m.done
	}
	res := &r.res.Chat
	res.Members, res.Senders = len(ms), c.ChatSenders
	res.Sent = int(want)
	res.PerSecond = float64(want) / end.Sub(start).Seconds()
	var all hist
	res.Errors = map[string]int{}
	for _, m := range ms {
		all.merge(&m.lat)
		res.Stored += m.stored
		res.Missed += max(int(want-m.received.Load()), 0)
		for code, n := range m.errs {
			res.Errors[code] += n
		}
		if m.closed != "" {
			res.Closed++
		}
	}
	res.Latency = all.summary()
	res.DeliveriesPerSecond = float64(all.n) / end.Sub(start).Seconds()
	r.logf("chat: %d sent, %d stored, p50 %.1f ms", res.Sent, res.Stored, res.Latency.P50)
	return nil
}
