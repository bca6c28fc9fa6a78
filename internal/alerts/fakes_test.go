package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

var errNotFound = fmt.Errorf("fake store: %w", model.ErrNotFound)

// fakeStore keeps alerts and rules in memory with the semantics of the
// real store: one live alert per sensor, metric and kind.
type fakeStore struct {
	mu       sync.Mutex
	alerts   []model.Alert
	rules    map[string][]model.AlertRule
	stats    []model.SeriesStats
	lastSeq  int64 // LastReadingSeq: the batches the stats reflect
	silences []model.Silence
	failing  int // the next failing calls of UpsertAlert / ResolveLiveAlert fail
	calls    int
}

// AlertsAfter returns the alerts with an EventID above after (tests set
// event ids themselves), ordered by it.
func (f *fakeStore) AlertsAfter(_ context.Context, after int64, limit int) ([]model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Alert
	for _, a := range f.alerts {
		if a.EventID > after {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b model.Alert) int { return cmp.Compare(a.EventID, b.EventID) })
	return out[:min(limit, len(out))], nil
}

func (f *fakeStore) InsertSilence(_ context.Context, si model.Silence) (model.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	si.ID = int64(len(f.silences) + 1)
	f.silences = append(f.silences, si)
	return si, nil
}

func (f *fakeStore) EndSilence(_ context.Context, id int64, user string, at time.Time) (model.Silence, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || id > int64(len(f.silences)) {
		return model.Silence{}, false, errNotFound
	}
	si := &f.silences[id-1]
	if !si.InForce(at) {
		return *si, false, nil
	}
	si.EndedBy, si.EndedAt = &user, &at
	return *si, true, nil
}

func (f *fakeStore) Silences(_ context.Context, flt model.SilenceFilter) ([]model.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Silence
	for _, si := range slices.Backward(f.silences) {
		if (flt.SensorID == "" || si.SensorID == flt.SensorID) && (flt.InForce.IsZero() || si.InForce(flt.InForce)) {
			out = append(out, si)
		}
	}
	return out, nil
}

// fakeBroadcaster records what was broadcast.
type fakeBroadcaster struct {
	mu   sync.Mutex
	msgs []broadcastMsg
}

type broadcastMsg struct {
	typ  string
	data any
}

func (b *fakeBroadcaster) Broadcast(typ string, data any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, broadcastMsg{typ, data})
	return nil
}

func (b *fakeBroadcaster) taken() []broadcastMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.msgs
	b.msgs = nil
	return out
}

func newFakeStore() *fakeStore { return &fakeStore{rules: map[string][]model.AlertRule{}} }

var errDown = errors.New("fake store: database down")

func (f *fakeStore) fail() bool {
	f.calls++
	if f.failing > 0 {
		f.failing--
		return true
	}
	return false
}

func (f *fakeStore) liveIndex(sensor, metric, kind string) int {
	for i, a := range f.alerts {
		if a.SensorID == sensor && a.Metric == metric && a.Kind == kind && a.Live() {
			return i
		}
	}
	return -1
}

func (f *fakeStore) UpsertAlert(_ context.Context, b model.AlertBreach) (model.Alert, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail() {
		return model.Alert{}, false, errDown
	}
	if i := f.liveIndex(b.SensorID, b.Metric, b.Kind); i >= 0 {
		a := &f.alerts[i]
		a.Count += b.Count
		a.Value, a.LimitOrScore = b.Value, b.LimitOrScore
		if b.Severity == model.SeverityCritical {
			a.Severity = b.Severity
		}
		if b.LastAt.After(a.UpdatedAt) {
			a.UpdatedAt = b.LastAt
		}
		return *a, false, nil
	}
	a := model.Alert{ID: int64(len(f.alerts) + 1), SensorID: b.SensorID, Metric: b.Metric, Kind: b.Kind, Severity: b.Severity,
		Value: b.Value, LimitOrScore: b.LimitOrScore, State: model.AlertOpen, OpenedAt: b.FirstAt, UpdatedAt: b.LastAt, Count: b.Count,
		SilenceID: b.SilenceID}
	f.alerts = append(f.alerts, a)
	return a, true, nil
}

func (f *fakeStore) ResolveLiveAlert(_ context.Context, sensor, metric, kind string, at time.Time) (model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail() {
		return model.Alert{}, errDown
	}
	i := f.liveIndex(sensor, metric, kind)
	if i < 0 {
		return model.Alert{}, errNotFound
	}
	a := &f.alerts[i]
	by := model.ResolvedBySystem
	a.State, a.ResolvedBy, a.ResolvedAt, a.UpdatedAt = model.AlertResolved, &by, &at, at
	return *a, nil
}

func (f *fakeStore) transition(id int64, from []string, apply func(a *model.Alert)) (model.Alert, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || id > int64(len(f.alerts)) {
		return model.Alert{}, false, errNotFound
	}
	a := &f.alerts[id-1]
	if !slices.Contains(from, a.State) {
		return *a, false, nil
	}
	apply(a)
	return *a, true, nil
}

func (f *fakeStore) AckAlert(_ context.Context, id int64, user string, at time.Time) (model.Alert, bool, error) {
	f.mu.Lock()
	for i := range f.alerts {
		if a := &f.alerts[i]; a.ID == id && a.State == model.AlertResolved && a.AckedBy == nil {
			a.AckedBy, a.UpdatedAt = &user, at
			f.mu.Unlock()
			return *a, true, nil
		}
	}
	f.mu.Unlock()
	return f.transition(id, []string{model.AlertOpen}, func(a *model.Alert) {
		a.State, a.AckedBy, a.UpdatedAt = model.AlertAcknowledged, &user, at
	})
}

func (f *fakeStore) ResolveAlert(_ context.Context, id int64, user, note string, at time.Time) (model.Alert, bool, error) {
	return f.transition(id, []string{model.AlertOpen, model.AlertAcknowledged}, func(a *model.Alert) {
		a.State, a.ResolvedBy, a.ResolvedAt, a.UpdatedAt, a.Note = model.AlertResolved, &user, &at, at, note
	})
}

func (f *fakeStore) Alert(_ context.Context, id int64) (model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || id > int64(len(f.alerts)) {
		return model.Alert{}, errNotFound
	}
	return f.alerts[id-1], nil
}

func (f *fakeStore) Alerts(_ context.Context, flt model.AlertFilter) ([]model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Alert
	for i := len(f.alerts) - 1; i >= 0 && len(out) < flt.Limit; i-- {
		out = append(out, f.alerts[i])
	}
	return out, nil
}

func (f *fakeStore) LiveAlerts(context.Context) ([]model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Alert
	for _, a := range f.alerts {
		if a.Live() {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeStore) LatestOfflineAlerts(context.Context) ([]model.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	latest := map[[2]string]model.Alert{}
	for _, a := range f.alerts {
		if a.Kind == model.AlertOffline {
			latest[[2]string{a.SensorID, a.Metric}] = a
		}
	}
	var out []model.Alert
	for _, a := range latest {
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeStore) LastReadingSeq(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSeq, nil
}

func (f *fakeStore) SeriesStats(context.Context, int) ([]model.SeriesStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stats), nil
}

func (f *fakeStore) AlertRules(_ context.Context, sensorID string) ([]model.AlertRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sensorID != "" {
		return slices.Clone(f.rules[sensorID]), nil
	}
	var out []model.AlertRule
	for _, rs := range f.rules {
		out = append(out, rs...)
	}
	return out, nil
}

func (f *fakeStore) ReplaceAlertRules(_ context.Context, sensorID, user string, at time.Time, rules []model.AlertRule) ([]model.AlertRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.AlertRule
	for _, r := range rules {
		r.SensorID, r.UpdatedBy, r.UpdatedAt = sensorID, user, at
		out = append(out, r)
	}
	f.rules[sensorID] = out
	return slices.Clone(out), nil
}

func (f *fakeStore) AlertMessages(context.Context, int64, int) ([]model.ChatMessage, error) {
	return nil, nil
}

func (f *fakeStore) all() []model.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.alerts)
}

// fakePoster records what is posted.
type fakePoster struct {
	mu    sync.Mutex
	posts []model.Alert
	err   error
}

func (p *fakePoster) PostReliable(_ context.Context, room, typ string, data any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if room != model.RoomAlerts || typ != "alert" {
		panic("posted " + typ + " to room " + room)
	}
	if p.err != nil {
		return p.err
	}
	switch a := data.(type) {
	case flappingAlert:
		a.Alert.Note = "flapping" // tests tell the flag by it; Note is never posted
		p.posts = append(p.posts, a.Alert)
	default:
		p.posts = append(p.posts, data.(model.Alert))
	}
	return nil
}

// take returns and forgets what was posted so far.
func (p *fakePoster) take() []model.Alert {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.posts
	p.posts = nil
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rig is a Detector driven by hand: readings at the clock's time, the
// worker's flush and the stale check called directly.
type rig struct {
	t      *testing.T
	d      *Detector
	store  *fakeStore
	poster *fakePoster
	bc     *fakeBroadcaster
	clock  *clock
	reg    *prometheus.Registry
}

func newRig(t *testing.T, st *fakeStore, edit func(*Config)) *rig {
	t.Helper()
	if st == nil {
		st = newFakeStore()
	}
	r := &rig{t: t, store: st, poster: &fakePoster{}, bc: &fakeBroadcaster{}, clock: &clock{t: t0}, reg: prometheus.NewRegistry()}
	// The mechanics tests open an alert on its first breach; TestNoise and
	// TestReplayDemo run with the anti-noise defaults (edit sets them to 0).
	cfg := Config{Now: r.clock.Now, SpikeOpenAfter: 1, ThresholdOpenAfter: 1}
	if edit != nil {
		edit(&cfg)
	}
	r.d = New(cfg, st, r.poster, r.bc, r.reg, discard())
	if err := r.d.load(context.Background()); err != nil {
		t.Fatalf("load: %v", err)
	}
	return r
}

// read publishes one reading per value of sensor/metric, dt apart (the
// clock moves with them), flushing the worker after each.
func (r *rig) read(sensor, metric string, dt time.Duration, values ...float64) {
	r.t.Helper()
	for _, v := range values {
		now := r.clock.add(dt)
		r.d.PublishReadings([]model.Reading{{SensorID: sensor, Metric: metric, Value: v, TS: now}})
		r.flush()
	}
}

func (r *rig) flush() {
	r.t.Helper()
	if !r.d.flush(context.Background()) {
		r.t.Fatal("flush did not finish")
	}
}

// tick runs the stale check at the clock's time, then the worker.
func (r *rig) tick() {
	r.t.Helper()
	r.d.mu.Lock()
	r.d.checkLocked(r.clock.Now())
	r.d.unlockAndSignal()
	r.flush()
}

// setRules stores rules, each enabled.
func (r *rig) setRules(sensor string, rules ...model.AlertRule) {
	r.t.Helper()
	for i := range rules {
		rules[i].Enabled = true
	}
	r.setRulesRaw(sensor, rules...)
}

func (r *rig) setRulesRaw(sensor string, rules ...model.AlertRule) {
	r.t.Helper()
	if _, err := r.d.SetRules(context.Background(), sensor, "olivia", rules); err != nil {
		r.t.Fatalf("SetRules: %v", err)
	}
}

func fp(v float64) *float64 { return &v }
func ip(v int) *int         { return &v }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// hubRequest is a request to a handler, as the hub would make it.
type hubRequest struct{ user, data string }

// wrap adapts a handler to the tests' simpler signature.
func wrap(h protocol.HandlerFunc) func(context.Context, hubRequest) (string, any, error) {
	return func(ctx context.Context, r hubRequest) (string, any, error) {
		var data json.RawMessage
		if r.data != "" {
			data = json.RawMessage(r.data)
		}
		rep, err := h(ctx, protocol.Request{User: r.user, Role: model.RoleAnalyst, Type: "test", Data: data})
		return rep.Type, rep.Data, err
	}
}

// errCode is the protocol error code of err, "" for nil.
func errCode(err error) string {
	var e *protocol.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return "internal: " + err.Error()
}
