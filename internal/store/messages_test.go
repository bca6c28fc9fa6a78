package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func ids(ms []model.ChatMessage) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestChatMessages(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	if _, _, err := s.CreateRoom(ctx, "ops", model.RoomKindChat, "ana"); err != nil {
		t.Fatal(err)
	}
	// Interleaved rooms: each counts its own ids from 1.
	for i := 1; i <= 7; i++ {
		for _, room := range []string{"general", "ops"} {
			m, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: room, User: "ana", Content: fmt.Sprintf("%s %d", room, i)})
			if err != nil {
				t.Fatalf("InsertChatMessage: %v", err)
			}
			if m.ID != int64(i) || m.TS.IsZero() || m.Content != fmt.Sprintf("%s %d", room, i) {
				t.Fatalf("inserted %+v, want id %d with a time", m, i)
			}
		}
	}
	if _, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: "nope", User: "ana", Content: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("InsertChatMessage into an unknown room = %v, want ErrNotFound", err)
	}

	tests := []struct {
		name   string
		room   string
		before int64
		limit  int
		want   []int64
	}{
		{"newest page", "general", 0, 3, []int64{5, 6, 7}},
		{"next page back", "general", 5, 3, []int64{2, 3, 4}},
		{"last page, short", "general", 2, 3, []int64{1}},
		{"before the first", "general", 1, 3, []int64{}},
		{"all", "ops", -1, 100, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"unknown room", "nope", 0, 10, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ChatMessages(ctx, tt.room, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("ChatMessages(%s, before %d, limit %d) ids = %v, want %v", tt.room, tt.before, tt.limit, ids(got), tt.want)
			}
			for _, m := range got {
				if m.Room != tt.room || m.Content != fmt.Sprintf("%s %d", tt.room, m.ID) || m.AlertID != nil {
					t.Errorf("message %+v", m)
				}
			}
		})
	}
	if _, err := s.ChatMessages(ctx, "ops", 0, 0); err == nil {
		t.Error("ChatMessages with limit 0 succeeded, want an error")
	}
}

func TestChatMessageContentStoredAsSent(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	tests := []string{
		`<script>alert("x")</script> & <b>bold</b>`,
		"ünïcödé — 日本語 🚨",
		"line one\nline two\ttab",
		`'; DROP TABLE chat_messages; --`,
	}
	for _, content := range tests {
		m, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: "general", User: "ana", Content: content})
		if err != nil {
			t.Fatalf("InsertChatMessage(%q): %v", content, err)
		}
		got, err := s.ChatMessages(ctx, "general", m.ID+1, 1)
		if err != nil || len(got) != 1 || got[0].Content != content {
			t.Errorf("read back %+v, %v; want content %q", got, err, content)
		}
	}
}

func TestChatMessageIDsUnderConcurrency(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.InsertChatMessage(ctx, model.ChatMessage{Room: "general", User: fmt.Sprint("w", w), Content: fmt.Sprint(i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.ChatMessages(ctx, "general", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if m.ID != int64(i+1) {
			t.Fatalf("ids = %v, want 1..%d without gaps or repeats", ids(got), writers*each)
		}
	}
	if len(got) != writers*each {
		t.Errorf("%d messages, want %d", len(got), writers*each)
	}
}

func TestAlertMessages(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	a7, a8 := int64(7), int64(8)
	in := []model.ChatMessage{
		{Room: "alerts", User: "ana", Content: "looking", AlertID: &a7},
		{Room: "alerts", User: "bob", Content: "other alert", AlertID: &a8},
		{Room: "general", User: "bob", Content: "no alert"},
		{Room: "general", User: "cid", Content: "about 7 from general", AlertID: &a7},
		{Room: "alerts", User: "ana", Content: "fixed", AlertID: &a7},
	}
	for _, m := range in {
		if _, err := s.InsertChatMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		alert int64
		limit int
		want  []string
	}{
		{7, 10, []string{"looking", "about 7 from general", "fixed"}},
		{7, 2, []string{"about 7 from general", "fixed"}},
		{8, 10, []string{"other alert"}},
		{9, 10, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.alert, "/", tt.limit), func(t *testing.T) {
			got, err := s.AlertMessages(ctx, tt.alert, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var contents []string
			for _, m := range got {
				contents = append(contents, m.Content)
				if m.AlertID == nil || *m.AlertID != tt.alert {
					t.Errorf("message %+v does not carry alert %d", m, tt.alert)
				}
			}
			if !slices.Equal(contents, tt.want) {
				t.Errorf("AlertMessages(%d, %d) = %q, want %q", tt.alert, tt.limit, contents, tt.want)
			}
		})
	}
}

func TestDirectMessages(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	in := []model.DirectMessage{
		{From: "ana", To: "bob", Content: "1"},
		{From: "bob", To: "ana", Content: "2"},
		{From: "ana", To: "cid", Content: "other pair"},
		{From: "ana", To: "bob", Content: "3"},
	}
	var stored []model.DirectMessage
	for _, dm := range in {
		got, err := s.InsertDirectMessage(ctx, dm)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID == 0 || got.TS.IsZero() || got.From != dm.From || got.To != dm.To {
			t.Fatalf("InsertDirectMessage = %+v", got)
		}
		stored = append(stored, got)
	}
	tests := []struct {
		name   string
		a, b   string
		before int64
		limit  int
		want   []string
	}{
		{"both directions", "ana", "bob", 0, 10, []string{"1", "2", "3"}},
		{"either order", "bob", "ana", 0, 10, []string{"1", "2", "3"}},
		{"newest page", "ana", "bob", 0, 2, []string{"2", "3"}},
		{"page back", "ana", "bob", stored[1].ID, 2, []string{"1"}},
		{"other pair", "cid", "ana", 0, 10, []string{"other pair"}},
		{"nobody", "bob", "cid", 0, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DirectMessages(ctx, tt.a, tt.b, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var contents []string
			for _, m := range got {
				contents = append(contents, m.Content)
			}
			if !slices.Equal(contents, tt.want) {
				t.Errorf("DirectMessages = %q, want %q", contents, tt.want)
			}
		})
	}
}
