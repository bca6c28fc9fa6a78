package alerts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func (r *rig) silence(sensor, metric, kind string, d time.Duration) model.Silence {
	r.t.Helper()
	si, err := r.d.CreateSilence(context.Background(), "olivia",
		model.Silence{SensorID: sensor, Metric: metric, Kind: kind, Reason: "maintenance", Until: r.clock.Now().Add(d)})
	if err != nil {
		r.t.Fatalf("CreateSilence: %v", err)
	}
	return si
}

// A silence mutes announcements, not detection: alerts opened while it is
// in force are stored and posted carrying its id; once it ends or expires,
// new alerts are ordinary again.
func TestSilenceMarksAlertsOpenedUnderIt(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("boiler-1", model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Max: fp(60)})
	if got := r.bc.taken(); len(got) != 1 || got[0].typ != protocol.TypeRulesChanged ||
		got[0].data.(protocol.RulesChanged).SensorID != "boiler-1" || got[0].data.(protocol.RulesChanged).UpdatedBy != "olivia" {
		t.Fatalf("SetRules broadcast %+v, want one rules_changed for boiler-1 by olivia", got)
	}

	si := r.silence("boiler-1", "", "", time.Hour)
	if got := r.bc.taken(); len(got) != 1 || got[0].typ != protocol.TypeSilence || got[0].data.(model.Silence).ID != si.ID {
		t.Fatalf("CreateSilence broadcast %+v", got)
	}
	if si.CreatedBy != "olivia" || !si.CreatedAt.Equal(r.clock.Now()) || si.EndedAt != nil {
		t.Errorf("silence = %+v", si)
	}

	r.read("boiler-1", "temperature", time.Second, 70)
	posts := r.poster.take()
	if len(posts) != 1 || posts[0].SilenceID != si.ID || posts[0].State != model.AlertOpen {
		t.Fatalf("posted %+v, want one open alert with silence_id %d", posts, si.ID)
	}
	if got := testutil.ToFloat64(r.d.m.silenced.WithLabelValues(model.AlertThreshold)); got != 1 {
		t.Errorf("silenced_total = %v, want 1", got)
	}
	// Back to normal: it resolves by itself as usual.
	r.read("boiler-1", "temperature", time.Second, 20, 20, 20, 20, 20)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].State != model.AlertResolved {
		t.Fatalf("posted %+v, want the resolve", posts)
	}

	// Another sensor is not silenced.
	r.setRules("pump-2", model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Max: fp(60)})
	r.read("pump-2", "temperature", time.Second, 70)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].SilenceID != 0 {
		t.Fatalf("pump-2 posted %+v, want an alert without silence", posts)
	}

	// The hour passes: the silence expires (logged and counted) and the
	// next alert of boiler-1 is announced again.
	r.clock.add(time.Hour)
	r.d.expireSilences(r.clock.Now())
	if got := testutil.ToFloat64(r.d.m.silences.WithLabelValues(silenceExpired)); got != 1 {
		t.Errorf("expired = %v, want 1", got)
	}
	r.read("boiler-1", "temperature", time.Second, 70)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].SilenceID != 0 {
		t.Fatalf("after expiry posted %+v, want an alert without silence", posts)
	}
}

// Expiry goes by the injected clock even before the stale check removes
// the silence from the cache.
func TestSilenceExpiresByTheClock(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("boiler-1", model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Max: fp(60)})
	r.silence("boiler-1", "", "", time.Minute)
	r.clock.add(time.Minute) // until is exclusive
	r.read("boiler-1", "temperature", 0, 70)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].SilenceID != 0 {
		t.Fatalf("posted %+v, want an alert without silence", posts)
	}
}

// A rule's silence covers that metric and rule kind only; the stale rule's
// covers offline alerts.
func TestSilenceOfOneRule(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("boiler-1",
		model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Max: fp(60)},
		model.AlertRule{Metric: "temperature", Kind: model.RuleStale, AfterSeconds: fp(30)},
		model.AlertRule{Metric: "humidity", Kind: model.RuleThreshold, Max: fp(60)},
		model.AlertRule{Metric: "humidity", Kind: model.RuleStale, AfterSeconds: fp(30)},
	)
	th := r.silence("boiler-1", "temperature", model.RuleThreshold, time.Hour)
	st := r.silence("boiler-1", "humidity", model.RuleStale, time.Hour)

	r.read("boiler-1", "temperature", time.Second, 70)
	r.read("boiler-1", "humidity", time.Second, 70)
	posts := r.poster.take()
	if len(posts) != 2 {
		t.Fatalf("posted %+v, want two alerts", posts)
	}
	for _, a := range posts {
		want := int64(0)
		if a.Metric == "temperature" {
			want = th.ID
		}
		if a.SilenceID != want {
			t.Errorf("%s %s alert has silence_id %d, want %d", a.Metric, a.Kind, a.SilenceID, want)
		}
	}

	r.clock.add(31 * time.Second)
	r.tick()
	posts = r.poster.take()
	var offline []model.Alert
	for _, a := range posts {
		if a.Kind == model.AlertOffline {
			offline = append(offline, a)
		}
	}
	if len(offline) != 2 {
		t.Fatalf("offline alerts %+v, want temperature and humidity", posts)
	}
	for _, a := range offline {
		want := int64(0)
		if a.Metric == "humidity" {
			want = st.ID
		}
		if a.SilenceID != want {
			t.Errorf("offline %s has silence_id %d, want %d", a.Metric, a.SilenceID, want)
		}
	}
}

func TestEndSilence(t *testing.T) {
	r := newRig(t, nil, nil)
	r.setRules("boiler-1", model.AlertRule{Metric: "temperature", Kind: model.RuleThreshold, Max: fp(60)})
	si := r.silence("boiler-1", "", "", time.Hour)
	r.bc.taken()
	r.clock.add(time.Minute)

	ended, err := r.d.EndSilence(context.Background(), si.ID, "paul")
	if err != nil || ended.EndedBy == nil || *ended.EndedBy != "paul" || !ended.EndedAt.Equal(r.clock.Now()) {
		t.Fatalf("EndSilence = %+v, %v", ended, err)
	}
	if got := r.bc.taken(); len(got) != 1 || got[0].typ != protocol.TypeSilence || got[0].data.(model.Silence).EndedBy == nil {
		t.Errorf("EndSilence broadcast %+v", got)
	}
	if got := testutil.ToFloat64(r.d.m.silences.WithLabelValues(silenceEnded)); got != 1 {
		t.Errorf("ended = %v, want 1", got)
	}
	r.read("boiler-1", "temperature", time.Second, 70)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].SilenceID != 0 {
		t.Fatalf("after the end posted %+v, want an alert without silence", posts)
	}

	if _, err := r.d.EndSilence(context.Background(), si.ID, "paul"); !errors.Is(err, model.ErrConflict) {
		t.Errorf("ending it again: %v, want a conflict", err)
	}
	if _, err := r.d.EndSilence(context.Background(), 99, "paul"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("ending an unknown silence: %v, want not found", err)
	}
	if len(r.bc.taken()) != 0 {
		t.Error("a refused end was broadcast")
	}
}

func TestCreateSilenceValidates(t *testing.T) {
	r := newRig(t, nil, nil)
	for _, si := range []model.Silence{
		{SensorID: "boiler-1", Until: r.clock.Now()},                                              // not in the future
		{SensorID: "boiler-1", Until: r.clock.Now().Add(31 * 24 * time.Hour)},                     // too long
		{SensorID: "boiler-1", Metric: "temperature", Until: r.clock.Now().Add(time.Hour)},        // no kind
		{SensorID: "boiler-1", Metric: "t", Kind: "offline", Until: r.clock.Now().Add(time.Hour)}, // alert kind, not rule kind
		{SensorID: "bad id", Until: r.clock.Now().Add(time.Hour)},
	} {
		if _, err := r.d.CreateSilence(context.Background(), "olivia", si); err == nil {
			t.Errorf("CreateSilence(%+v) accepted", si)
		}
	}
	if n := len(r.store.silences); n != 0 {
		t.Errorf("%d silences stored", n)
	}
}

// After a restart, silences in force are loaded with the rules.
func TestSilencesLoadedAtStart(t *testing.T) {
	st := newFakeStore()
	st.rules["boiler-1"] = []model.AlertRule{{SensorID: "boiler-1", Metric: "temperature", Kind: model.RuleThreshold, Enabled: true, Max: fp(60)}}
	st.silences = []model.Silence{
		{ID: 1, SensorID: "boiler-1", CreatedBy: "olivia", CreatedAt: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Hour)},
		{ID: 2, SensorID: "boiler-1", CreatedBy: "olivia", CreatedAt: t0.Add(-time.Minute), Until: t0.Add(time.Hour)},
	}
	r := newRig(t, st, nil)
	r.read("boiler-1", "temperature", time.Second, 70)
	if posts := r.poster.take(); len(posts) != 1 || posts[0].SilenceID != 2 {
		t.Fatalf("posted %+v, want an alert under silence 2", posts)
	}
}
