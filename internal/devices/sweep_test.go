package devices

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

// The instance that issued a command died before its timer fired: the
// sweeps of two other instances, running at once against the real
// database, time it out once, and its user hears it once. A command not
// yet past its timeout and the sweep's slack is left alone.
func TestSweepTimesOutADeadInstancesCommandsOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, c := range []model.Command{
		{ID: "overdue", SensorID: "s-1", Action: "reboot", IssuedBy: "ana", IssuedAt: now.Add(-DefaultTimeout - sweepSlack - time.Second)},
		{ID: "recent", SensorID: "s-1", Action: "reboot", IssuedBy: "ana", IssuedAt: now.Add(-DefaultTimeout - sweepSlack + time.Second)},
	} {
		if err := st.InsertCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var notifiers [2]fakeNotifier
	var wg sync.WaitGroup
	for i := range notifiers {
		d, err := New(Config{BrokerURL: "tcp://127.0.0.1:1", ClientID: "c", Timeout: DefaultTimeout}, st, &notifiers[i], prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		d.now = func() time.Time { return now }
		wg.Add(1)
		go func() { defer wg.Done(); d.sweep(ctx) }()
	}
	wg.Wait()
	var got []notification
	for i := range notifiers {
		got = append(got, notifiers[i].snapshot()...)
	}
	if len(got) != 1 || got[0].user != "ana" || got[0].data.CommandID != "overdue" || got[0].data.Status != model.CommandTimeout || got[0].ref != nil {
		t.Fatalf("notifications %+v; want one timeout of overdue to ana, ref null", got)
	}
	if c, _ := st.Command(ctx, "overdue"); c.Status != model.CommandTimeout {
		t.Errorf("overdue is %s, want timeout", c.Status)
	}
	if c, _ := st.Command(ctx, "recent"); c.Status != model.CommandPending {
		t.Errorf("recent is %s, want still pending", c.Status)
	}
}
