package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func TestReplayAlerts(t *testing.T) {
	st := newFakeStore()
	for i, ev := range []int64{12, 10, 15} {
		st.alerts = append(st.alerts, model.Alert{ID: int64(i + 1), EventID: ev, State: model.AlertOpen})
	}
	d := New(Config{}, st, &fakePoster{}, nil, prometheus.NewRegistry(), discard())
	for _, tt := range []struct {
		cursor string
		max    int
		want   []int64 // alert ids
		err    string
	}{
		{"0", 10, []int64{2, 1, 3}, ""},
		{"12", 10, []int64{3}, ""},
		{"15", 10, []int64{}, ""},
		{"0", 2, nil, protocol.RefusedTooMany},
		{`"x"`, 10, nil, protocol.CodeBadRequest},
		{`-1`, 10, nil, protocol.CodeBadRequest},
	} {
		r, err := d.ReplayAlerts(context.Background(), protocol.ReplayRequest{Cursor: json.RawMessage(tt.cursor), Max: tt.max})
		var ref *protocol.Refusal
		var he *protocol.Error
		switch {
		case errors.As(err, &ref) && ref.Reason == tt.err, errors.As(err, &he) && he.Code == tt.err:
			continue
		case err != nil || tt.err != "":
			t.Errorf("cursor %s: error %v, want %q", tt.cursor, err, tt.err)
			continue
		}
		got := make([]int64, len(r.Msgs))
		for i, m := range r.Msgs {
			a := m.Data.(model.Alert)
			got[i] = a.ID
			if m.Type != "alert" || m.Key != a.ResumeKey() {
				t.Errorf("replayed %+v", m)
			}
		}
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[len(got)-1] != tt.want[len(tt.want)-1]) {
			t.Errorf("cursor %s: alerts %v, want %v", tt.cursor, got, tt.want)
		}
	}

	// With several instances the replay reaches back ResumeOverlap event
	// ids from the cursor: alert 2 (event 10) may reach a client after
	// alert 1 (event 12).
	d = New(Config{ResumeOverlap: 3}, st, &fakePoster{}, nil, prometheus.NewRegistry(), discard())
	for cursor, want := range map[string][]int64{"12": {2, 1, 3}, "15": {3}, "14": {1, 3}, "1": {2, 1, 3}} {
		r, err := d.ReplayAlerts(context.Background(), protocol.ReplayRequest{Cursor: json.RawMessage(cursor), Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, m := range r.Msgs {
			got = append(got, m.Data.(model.Alert).ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("overlap 3, cursor %s: alerts %v, want %v", cursor, got, want)
		}
	}
}
