package store

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func TestDeliveries(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	in := []model.Delivery{
		{User: "ana", Type: "command_response", Ref: json.RawMessage(`"req-1"`), Data: json.RawMessage(`{"status":"success"}`)},
		{User: "bob", Type: "command_response", Data: json.RawMessage(`{"status":"error"}`)},
		{User: "ana", Type: "alert", Data: json.RawMessage(`{"level":"high"}`)},
	}
	var ids []int64
	// The first alone, the rest in one statement: ids keep input order.
	for _, batch := range [][]model.Delivery{in[:1], in[1:]} {
		got, err := s.InsertDeliveries(ctx, batch)
		if err != nil {
			t.Fatalf("InsertDeliveries: %v", err)
		}
		for i, d := range got {
			if d.ID == 0 || (len(ids) > 0 && d.ID <= ids[len(ids)-1]) {
				t.Errorf("delivery %d: ID = %d, want increasing ids (previous %v)", len(ids), d.ID, ids)
			}
			if d.User != batch[i].User || d.Type != batch[i].Type {
				t.Errorf("delivery %d came back as %+v, want recipient %s type %s", len(ids), d, batch[i].User, batch[i].Type)
			}
			ids = append(ids, d.ID)
		}
	}

	t.Run("empty data refused", func(t *testing.T) {
		if _, err := s.InsertDeliveries(ctx, []model.Delivery{{User: "ana", Type: "x"}}); err == nil {
			t.Error("InsertDeliveries without data succeeded, want an error")
		}
	})

	t.Run("pending, oldest first", func(t *testing.T) {
		tests := []struct {
			user  string
			limit int
			want  []int64
		}{
			{"ana", 10, []int64{ids[0], ids[2]}},
			{"ana", 1, []int64{ids[0]}},
			{"bob", 10, []int64{ids[1]}},
			{"carol", 10, nil},
		}
		for _, tt := range tests {
			got, err := s.PendingDeliveries(ctx, tt.user, tt.limit)
			if err != nil {
				t.Fatalf("PendingDeliveries(%s): %v", tt.user, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("PendingDeliveries(%s, %d) = %+v, want ids %v", tt.user, tt.limit, got, tt.want)
			}
			for i, d := range got {
				if d.ID != tt.want[i] || d.User != tt.user {
					t.Errorf("PendingDeliveries(%s)[%d] = %+v, want id %d", tt.user, i, d, tt.want[i])
				}
			}
		}
		got, err := s.PendingDeliveries(ctx, "ana", 10)
		if err != nil {
			t.Fatalf("PendingDeliveries: %v", err)
		}
		if got[0].Type != "command_response" || string(got[0].Ref) != `"req-1"` || !jsonEqual(t, got[0].Data, in[0].Data) {
			t.Errorf("delivery = %+v (ref %s, data %s), want %+v", got[0], got[0].Ref, got[0].Data, in[0])
		}
		if got[1].Ref != nil {
			t.Errorf("delivery without ref came back with ref %s, want nil", got[1].Ref)
		}
		if _, err := s.PendingDeliveries(ctx, "ana", 0); err == nil {
			t.Error("PendingDeliveries with limit 0 succeeded, want an error")
		}
	})

	t.Run("ack", func(t *testing.T) {
		tests := []struct {
			name string
			user string
			ids  []int64
			want []int64
		}{
			{"wrong recipient", "bob", []int64{ids[0]}, []int64{}},
			{"right recipient", "ana", []int64{ids[0]}, []int64{ids[0]}},
			{"acked twice, with an unknown id", "ana", []int64{ids[0], ids[2] + 1000}, []int64{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.AckDeliveries(ctx, tt.user, tt.ids)
				if err != nil || !slices.Equal(got, tt.want) {
					t.Fatalf("AckDeliveries(%s, %v) = %v, %v, want %v", tt.user, tt.ids, got, err, tt.want)
				}
			})
		}
		got, err := s.PendingDeliveries(ctx, "ana", 10)
		if err != nil {
			t.Fatalf("PendingDeliveries: %v", err)
		}
		if len(got) != 1 || got[0].ID != ids[2] {
			t.Errorf("after ack, pending for ana = %+v, want only id %d", got, ids[2])
		}
	})
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
