package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

func TestCommands(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	cmds := []model.Command{
		{ID: "c1", SensorID: "a", Action: "reboot", IssuedBy: "op", IssuedAt: at(0)},
		{ID: "c2", SensorID: "a", Action: "set", Params: json.RawMessage(`{"interval": 5}`), IssuedBy: "op", IssuedAt: at(1)},
		{ID: "c3", SensorID: "b", Action: "reboot", IssuedBy: "admin", IssuedAt: at(2)},
	}
	for _, c := range cmds {
		if err := s.InsertCommand(ctx, c); err != nil {
			t.Fatalf("InsertCommand %s: %v", c.ID, err)
		}
	}

	t.Run("duplicate id refused", func(t *testing.T) {
		if err := s.InsertCommand(ctx, cmds[0]); err == nil {
			t.Error("InsertCommand with an existing id succeeded")
		}
	})

	t.Run("inserted as pending", func(t *testing.T) {
		c, err := s.Command(ctx, "c2")
		if err != nil {
			t.Fatalf("Command: %v", err)
		}
		if c.Status != model.CommandPending || c.RespondedAt != nil || c.LatencyMS != nil ||
			c.SensorID != "a" || c.Action != "set" || c.IssuedBy != "op" || !c.IssuedAt.Equal(at(1)) {
			t.Errorf("Command = %+v", c)
		}
		var params map[string]int
		if err := json.Unmarshal(c.Params, &params); err != nil || params["interval"] != 5 {
			t.Errorf("Params = %s (%v), want interval 5", c.Params, err)
		}
		c1, err := s.Command(ctx, "c1")
		if err != nil {
			t.Fatalf("Command: %v", err)
		}
		if string(c1.Params) != "{}" {
			t.Errorf("empty Params stored as %s, want {}", c1.Params)
		}
	})

	t.Run("zero IssuedAt means now", func(t *testing.T) {
		if err := s.InsertCommand(ctx, model.Command{ID: "c0", SensorID: "z", Action: "ping", IssuedBy: "op"}); err != nil {
			t.Fatalf("InsertCommand: %v", err)
		}
		c, err := s.Command(ctx, "c0")
		if err != nil {
			t.Fatalf("Command: %v", err)
		}
		if d := time.Since(c.IssuedAt); d < -time.Minute || d > time.Minute {
			t.Errorf("IssuedAt = %v, want about now", c.IssuedAt)
		}
	})

	t.Run("finish", func(t *testing.T) {
		tests := []struct {
			name        string
			id, status  string
			at          time.Time
			wantErr     error // nil, ErrNotFound, or errAny
			wantLatency float64
		}{
			{name: "pending to success", id: "c1", status: model.CommandSuccess, at: at(0).Add(250 * time.Millisecond), wantLatency: 250},
			{name: "finishing twice is not found", id: "c1", status: model.CommandError, at: at(5), wantErr: ErrNotFound},
			{name: "pending to timeout", id: "c2", status: model.CommandTimeout, at: at(11), wantLatency: 10000},
			{name: "late response after timeout is not found", id: "c2", status: model.CommandSuccess, at: at(12), wantErr: ErrNotFound},
			{name: "unknown id", id: "nope", status: model.CommandSuccess, at: at(1), wantErr: ErrNotFound},
			{name: "pending is not a final status", id: "c3", status: model.CommandPending, at: at(3), wantErr: errAny},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, err := s.FinishCommand(ctx, tt.id, tt.status, "msg "+tt.name, tt.at)
				switch {
				case tt.wantErr == errAny:
					if err == nil || errors.Is(err, ErrNotFound) {
						t.Fatalf("err = %v, want a non-ErrNotFound error", err)
					}
					return
				case tt.wantErr != nil:
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					return
				case err != nil:
					t.Fatalf("FinishCommand: %v", err)
				}
				if c.ID != tt.id || c.Status != tt.status || c.Message != "msg "+tt.name ||
					c.RespondedAt == nil || !c.RespondedAt.Equal(tt.at) || c.LatencyMS == nil || *c.LatencyMS != tt.wantLatency {
					t.Errorf("FinishCommand = %+v (latency %v), want status %s latency %v", c, deref(c.LatencyMS), tt.status, tt.wantLatency)
				}
				stored, err := s.Command(ctx, tt.id)
				if err != nil {
					t.Fatalf("Command: %v", err)
				}
				if stored.Status != tt.status {
					t.Errorf("stored status = %s, want %s", stored.Status, tt.status)
				}
			})
		}
		// The failed attempts must not have touched the finished commands.
		c, err := s.Command(ctx, "c2")
		if err != nil {
			t.Fatalf("Command: %v", err)
		}
		if c.Status != model.CommandTimeout {
			t.Errorf("c2 status = %s after a late response, want timeout", c.Status)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		if _, err := s.Command(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			sensor string
			limit  int
			want   []string
		}{
			{"a", 10, []string{"c2", "c1"}},
			{"a", 1, []string{"c2"}},
			{"b", 10, []string{"c3"}},
			{"", 10, []string{"c0", "c3", "c2", "c1"}}, // c0 was issued "now", after 2026-01-01
			{"", 2, []string{"c0", "c3"}},
			{"nobody", 10, nil},
		}
		for _, tt := range tests {
			got, err := s.Commands(ctx, tt.sensor, tt.limit)
			if err != nil {
				t.Fatalf("Commands(%q, %d): %v", tt.sensor, tt.limit, err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if !equalStrings(ids, tt.want) {
				t.Errorf("Commands(%q, %d) = %v, want %v", tt.sensor, tt.limit, ids, tt.want)
			}
		}
		if _, err := s.Commands(ctx, "", 0); err == nil {
			t.Error("Commands with limit 0 succeeded, want an error")
		}
	})

	t.Run("pending", func(t *testing.T) {
		all, err := s.Commands(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := len(all) - 1; i >= 0; i-- { // Commands is newest first
			if all[i].Status == model.CommandPending {
				want = append(want, all[i].ID)
			}
		}
		got, err := s.PendingCommands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if len(want) == 0 || !equalStrings(ids, want) {
			t.Errorf("PendingCommands = %v, want %v (oldest first, pending only)", ids, want)
		}
	})
}

// errAny marks a test case that expects some error other than ErrNotFound.
var errAny = errors.New("any error")

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
