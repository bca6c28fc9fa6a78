package alerts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// Retry bounds for the store, at start and for alert changes.
const (
	retryMin        = 100 * time.Millisecond
	retryMax        = 5 * time.Second
	shutdownTimeout = 5 * time.Second
)

// Run loads the state detection resumes from (rules, live alerts, recent
// statistics of every series), then stores and posts alert changes as
// PublishReadings decides them and checks for stale series every
// CheckInterval, until ctx is done. Then it stores and posts what is
// still pending, for up to 5 s. With Config.Elector it does so only while
// this instance leads (see runElected). Run is called once.
func (d *Detector) Run(ctx context.Context) error {
	if d.cfg.Elector != nil {
		return d.runElected(ctx, d.cfg.Elector)
	}
	d.m.leader.Set(1)
	return d.lead(ctx, nil)
}

// load reads the start-up state, retrying with backoff while the store
// fails. Readings that arrive meanwhile wait in d.pending and are
// evaluated right after.
func (d *Detector) load(ctx context.Context) error {
	return d.retry.Retry(ctx, d.loadOnce, func(attempt int, err error, wait time.Duration) {
		d.log.Warn("alerts: loading the start-up state failed; retrying", "err", err, "attempt", attempt, "retry_in", wait)
	})
}

func (d *Detector) loadOnce(ctx context.Context) error {
	// Held so that a rule PUT during the load is not overwritten by the
	// older rules read here.
	d.rulesMu.Lock()
	defer d.rulesMu.Unlock()
	rules, err := d.store.AlertRules(ctx, "")
	if err != nil {
		return err
	}
	live, err := d.store.LiveAlerts(ctx)
	if err != nil {
		return err
	}
	offline, err := d.store.LatestOfflineAlerts(ctx)
	if err != nil {
		return err
	}
	// Every batch up to asOf is in the statistics (read first: a batch
	// committed in between is then evaluated twice rather than never).
	asOf, err := d.store.LastReadingSeq(ctx)
	if err != nil {
		return err
	}
	stats, err := d.store.SeriesStats(ctx, d.cfg.SeedWindow)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	silences, err := d.store.Silences(ctx, model.SilenceFilter{InForce: now})
	if err != nil {
		return err
	}
	replay, err := d.handoverReadings(ctx)
	if err != nil {
		return err
	}

	d.mu.Lock()
	bySensor := map[string][]model.AlertRule{}
	for _, r := range rules {
		bySensor[r.SensorID] = append(bySensor[r.SensorID], r)
	}
	for sensor, rs := range bySensor {
		d.installRulesLocked(sensor, rs)
	}
	clear(d.silences)
	for _, si := range silences {
		d.installSilenceLocked(si)
	}
	for _, st := range stats {
		s := d.seriesLocked(seriesKey{st.SensorID, st.Metric})
		if s == nil {
			continue
		}
		s.lastTS = st.LastSeen
		// Silence is counted from now, not from the last stored reading:
		// after downtime the broker's backlog may take a while to drain,
		// and that is not an outage. A sensor that is really gone is
		// reported one stale limit after the start.
		s.lastSeen = now
		s.n, s.mean, s.variance = st.N, st.Mean, st.StdDev*st.StdDev
		if st.N > 1 {
			s.interval = st.Span.Seconds() / float64(st.N-1)
		}
	}
	for _, a := range live {
		k := kindIndex(a.Kind)
		s := d.seriesLocked(seriesKey{a.SensorID, a.Metric})
		if k < 0 || s == nil {
			continue
		}
		ks := &s.kinds[k]
		ks.live = true
		ks.gen++
		ks.alertID = a.ID
		ks.severity = a.Severity
		if k == kOffline {
			s.staleNotified = true
		}
	}
	// An outage already reported (its offline alert opened after the last
	// reading, even if someone resolved it since) is not reported again.
	for _, a := range offline {
		if s := d.series[seriesKey{a.SensorID, a.Metric}]; s != nil && !a.OpenedAt.Before(s.lastTS) {
			s.staleNotified = true
		}
	}
	d.replayLocked(replay, now)
	d.seenSeq = max(d.seenSeq, asOf)
	d.loaded = true
	pending := d.pending
	d.pending = nil
	d.evaluateBatchesLocked(pending, now)
	nSeries := len(d.series)
	d.unlockAndSignal()
	d.log.Info("alerts: detection started", "rules", len(rules), "live_alerts", len(live), "series", nSeries, "replayed", len(replay),
		"silences", len(silences), "readings_held", len(pending))
	return nil
}

func kindIndex(kind string) int {
	for i, n := range kindNames {
		if n == kind {
			return i
		}
	}
	return -1
}

// taken is the changes of one alert key taken by the worker.
type taken struct {
	ref opRef
	ops []op
}

// flush stores and posts every change of the dirty keys, in order per
// key. It returns false if ctx ended first; the changes not stored are
// counted as dropped.
func (d *Detector) flush(ctx context.Context) bool {
	now := d.cfg.Now()
	d.mu.Lock()
	refs := d.dirty
	d.dirty = nil
	work := make([]taken, 0, len(refs))
	for _, ref := range refs {
		ks := &ref.s.kinds[ref.kind]
		ks.queued = false
		ks.lastFlush = now
		if len(ks.ops) > 0 {
			work = append(work, taken{ref, ks.ops})
			ks.ops = nil
		}
	}
	d.mu.Unlock()
	left := 0
	for _, w := range work {
		left += len(w.ops)
	}
	d.m.pending.Set(float64(left))
	for _, w := range work {
		for _, o := range w.ops {
			if !d.apply(ctx, w.ref, o) {
				d.m.dropped.WithLabelValues(reasonShutdown).Add(float64(left))
				d.m.pending.Set(0)
				d.log.Error("alerts: alert changes not stored before shutdown", "changes", left)
				return false
			}
			left--
			d.m.pending.Set(float64(left))
		}
	}
	return true
}

// apply stores one change, retrying with backoff while the store fails,
// and posts the result. It returns false only when ctx ends first.
func (d *Detector) apply(ctx context.Context, ref opRef, o op) bool {
	err := d.retry.Retry(ctx, func(ctx context.Context) error { return d.applyOnce(ctx, ref, o) },
		func(attempt int, err error, wait time.Duration) {
			d.m.storeErrs.Inc()
			d.log.Warn("alerts: storing an alert change failed; retrying", "err", err, "attempt", attempt,
				"sensor_id", ref.s.key.sensor, "metric", ref.s.key.metric, "kind", kindNames[ref.kind], "retry_in", wait)
		})
	return err == nil
}

func (d *Detector) applyOnce(ctx context.Context, ref opRef, o op) error {
	key := ref.s.key
	if o.flag {
		d.mu.Lock()
		ks := &ref.s.kinds[ref.kind]
		id := ks.alertID
		if !ks.live || ks.gen != o.gen {
			id = 0
		}
		d.mu.Unlock()
		if id == 0 {
			return nil // resolved or replaced meanwhile: nothing to flag
		}
		a, err := d.store.Alert(ctx, id)
		if errors.Is(err, model.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d.post(ctx, a, o)
		return nil
	}
	if o.resolve {
		a, err := d.store.ResolveLiveAlert(ctx, key.sensor, key.metric, kindNames[ref.kind], o.at)
		if errors.Is(err, model.ErrNotFound) {
			return nil // someone resolved it meanwhile; nothing changed
		}
		if err != nil {
			return err
		}
		d.m.resolved.WithLabelValues(a.Kind, a.Severity, "system").Inc()
		d.post(ctx, a, o)
		return nil
	}
	a, inserted, err := d.store.UpsertAlert(ctx, o.breach)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if ks := &ref.s.kinds[ref.kind]; ks.live && ks.gen == o.gen {
		ks.alertID = a.ID
		ks.severity = a.Severity
	}
	d.mu.Unlock()
	if inserted {
		d.m.opened.WithLabelValues(a.Kind, a.Severity).Inc()
		if a.SilenceID != 0 {
			d.m.silenced.WithLabelValues(a.Kind).Inc()
		}
	} else {
		d.m.updated.WithLabelValues(a.Kind).Inc()
	}
	d.post(ctx, a, o)
	return nil
}

// post sends a stored alert to room alerts. A failure is counted and
// logged, not retried: the alert is stored, and clients reload live
// alerts over REST when they (re)connect.
func (d *Detector) post(ctx context.Context, a model.Alert, o op) {
	var data any = a
	if o.flapping {
		data = flappingAlert{a}
	}
	if err := d.poster.PostReliable(ctx, model.RoomAlerts, messageType, data); err != nil {
		d.m.dropped.WithLabelValues(reasonPostFailed).Inc()
		d.log.Warn("alerts: posting an alert to room alerts failed; clients see it over REST", "alert_id", a.ID, "err", err)
		return
	}
	if o.urgent {
		now := d.cfg.Now()
		d.m.latency.WithLabelValues("evaluated").Observe(math.Max(0, now.Sub(o.evaluated).Seconds()))
		// Device clocks may be off: a reading timestamp in the future or
		// far in the past says nothing about our latency.
		if lag := now.Sub(o.readingTS); !o.readingTS.IsZero() && lag >= 0 && lag < time.Hour {
			d.m.latency.WithLabelValues("reading").Observe(lag.Seconds())
		}
	}
}

// flappingAlert is the /ws alert of an alert kept open because it was
// flapping: the alert's JSON with "flapping": true added. The flag lives
// in the detector's memory only (docs/alerts.md, "Noise").
type flappingAlert struct{ model.Alert }

func (f flappingAlert) MarshalJSON() ([]byte, error) {
	b, err := f.Alert.MarshalJSON()
	if err != nil || len(b) < 2 || b[len(b)-1] != '}' {
		return b, err
	}
	return append(b[:len(b)-1], []byte(`,"flapping":true}`)...), nil
}

// shutdown stores and posts every pending change, held-back updates
// included, with a fresh context bounded to shutdownTimeout.
func (d *Detector) shutdown(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	d.mu.Lock()
	for _, s := range d.series {
		for k := range s.kinds {
			if len(s.kinds[k].ops) > 0 {
				d.markDirtyLocked(s, k)
			}
		}
	}
	d.wakeNow = false
	d.mu.Unlock()
	d.flush(fctx)
}

// errorf wraps err with the operation, the package's error style.
func errorf(op string, err error) error { return fmt.Errorf("alerts: %s: %w", op, err) }
