package alerts

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/backoff"
	"github.com/watchroom/watchroom/internal/model"
)

// Store is the database as alert detection and the alert REST routes use
// it.
type Store interface {
	UpsertAlert(ctx context.Context, b model.AlertBreach) (model.Alert, bool, error)
	ResolveLiveAlert(ctx context.Context, sensorID, metric, kind string, at time.Time) (model.Alert, error)
	AckAlert(ctx context.Context, id int64, user string, at time.Time) (model.Alert, bool, error)
	ResolveAlert(ctx context.Context, id int64, user, note string, at time.Time) (model.Alert, bool, error)
	Alert(ctx context.Context, id int64) (model.Alert, error)
	Alerts(ctx context.Context, f model.AlertFilter) ([]model.Alert, error)
	LiveAlerts(ctx context.Context) ([]model.Alert, error)
	LatestOfflineAlerts(ctx context.Context) ([]model.Alert, error)
	SeriesStats(ctx context.Context, window int) ([]model.SeriesStats, error)
	// LastReadingSeq is the highest batch seq committed or rolled back.
	LastReadingSeq(ctx context.Context) (int64, error)
	AlertRules(ctx context.Context, sensorID string) ([]model.AlertRule, error)
	ReplaceAlertRules(ctx context.Context, sensorID, user string, at time.Time, rules []model.AlertRule) ([]model.AlertRule, error)
	AlertMessages(ctx context.Context, alertID int64, limit int) ([]model.ChatMessage, error)
	AlertsAfter(ctx context.Context, eventID int64, limit int) ([]model.Alert, error)
	InsertSilence(ctx context.Context, s model.Silence) (model.Silence, error)
	EndSilence(ctx context.Context, id int64, user string, at time.Time) (model.Silence, bool, error)
	Silences(ctx context.Context, f model.SilenceFilter) ([]model.Silence, error)
}

// messageType is the /ws type of a posted or replayed alert.
const messageType = "alert"

// RoomPoster posts a message to every online member of a room, as a
// message they must acknowledge (the rooms package).
type RoomPoster interface {
	PostReliable(ctx context.Context, room, typ string, data any) error
}

// Broadcaster sends a message to every authenticated connection, not
// acked, not replayed (the hub). Rule changes and silences go through it.
type Broadcaster interface {
	Broadcast(typ string, data any) error
}

// Config tunes a Detector. Zero values take the defaults noted.
type Config struct {
	// CheckInterval is the period of the stale check, which also posts
	// updates held back by UpdateInterval (1s).
	CheckInterval time.Duration
	// UpdateInterval is the least time between two posted breach updates
	// of one live alert; breaches in between are coalesced, their count
	// kept exact (1s). Opening, escalating and resolving are never held.
	UpdateInterval time.Duration
	// MaxSeries bounds the sensor metrics tracked (100000).
	MaxSeries int
	// MaxPending bounds the readings held while the start-up state loads
	// (100000).
	MaxPending int
	// SeedWindow is how many recent readings per series seed the spike
	// statistics at start (50).
	SeedWindow int
	// Now is the clock (time.Now).
	Now func() time.Time
	// RegisteredOnly says every sensor whose readings reach detection is a
	// registered device (ingest in registered mode): the stale check then
	// watches every series from its first reading, not only the regular
	// ones (see watchedLocked).
	RegisteredOnly bool

	// SpikeOpenAfter is how many breaching readings in a row a spike
	// needs before its alert opens (3): one odd reading is noise, not an
	// anomaly. ThresholdOpenAfter is the same for a threshold (1: the
	// limit is an operator's, trusted on its first breach).
	SpikeOpenAfter     int
	ThresholdOpenAfter int
	// OpenFor is how long, besides the readings above, a breach must have
	// lasted before its alert opens (0: the readings decide alone).
	OpenFor time.Duration
	// FlapOpens alerts of one sensor, metric and kind opened within
	// FlapWindow make the last one flapping (3 in 15 min): it is kept open
	// until the series has had no breach for FlapQuiet (10 min), instead
	// of resolving and reopening on every burst.
	FlapOpens  int
	FlapWindow time.Duration
	FlapQuiet  time.Duration

	// Elector, when set, elects the one detector that runs among the
	// instances sharing the database; the others stand by (see
	// runElected). Nil: this detector always runs.
	Elector Elector
	// ResumeOverlap is how many event ids at or below a resume's cursor
	// are replayed too, with several instances: alert changes made on
	// different instances (the detector's, an acknowledgement) can reach a
	// client out of event_id order (0: none, one instance). Clients keep
	// the newest version of an alert, so what they hold changes nothing.
	ResumeOverlap int
	// Refresh is how often an elected leader reloads rules and silences
	// from the store, for changes made through other instances (5s; only
	// with an Elector).
	Refresh time.Duration
	// Handover, with an Elector, lets a new leader evaluate what the
	// previous one left: the leader records how far it got, the next one
	// replays the readings committed since (see handoverReadings).
	Handover Handover
}

func (c *Config) defaults() {
	if c.CheckInterval <= 0 {
		c.CheckInterval = time.Second
	}
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = time.Second
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = 100000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 100000
	}
	if c.SeedWindow <= 0 {
		c.SeedWindow = 50
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Refresh <= 0 {
		c.Refresh = 5 * time.Second
	}
	if c.SpikeOpenAfter <= 0 {
		c.SpikeOpenAfter = DefaultSpikeOpenAfter
	}
	if c.ThresholdOpenAfter <= 0 {
		c.ThresholdOpenAfter = DefaultThresholdOpenAfter
	}
	if c.FlapOpens <= 0 {
		c.FlapOpens = DefaultFlapOpens
	}
	if c.FlapWindow <= 0 {
		c.FlapWindow = DefaultFlapWindow
	}
	if c.FlapQuiet <= 0 {
		c.FlapQuiet = DefaultFlapQuiet
	}
}

// Defaults of Config's anti-noise settings (docs/alerts.md, "Noise").
const (
	DefaultSpikeOpenAfter     = 3
	DefaultThresholdOpenAfter = 1 // an operator's own limit is trusted on its first breach
	DefaultFlapOpens          = 3
	DefaultFlapWindow         = 15 * time.Minute
	DefaultFlapQuiet          = 10 * time.Minute
)

// Detection constants (docs/alerts.md).
const (
	// alpha is the weight of each new reading in the exponentially
	// weighted mean and variance: about the last 2/alpha = 40 readings
	// count, a reading's weight halves after ~14 more.
	alpha = 0.05
	// intervalAlpha smooths the usual interval between readings.
	intervalAlpha = 0.1
	// criticalMargin: a threshold breach beyond its limit by more than this
	// share of the rule's range is critical.
	criticalMargin = 0.1
	// maxOps bounds the changes held for one alert key while the store
	// fails (see fold).
	maxOps = 8
	// regularReadings is how many readings make a series regular enough
	// for the stale check (see watchedLocked).
	regularReadings = 10
	// hysteresis: a live spike alert counts a reading as normal only when
	// its score is at most hysteresis × k; a live threshold alert only when
	// the value is back inside the limits by thresholdHysteresis of the
	// span. Readings in between neither breach nor count towards the
	// resolve, so a value hovering at the limit does not flap.
	hysteresis          = 0.75
	thresholdHysteresis = 0.02
)

// Alert kinds as indexes of series.kinds.
const (
	kThreshold = iota
	kSpike
	kOffline
	numKinds
)

var kindNames = [numKinds]string{model.AlertThreshold, model.AlertSpike, model.AlertOffline}

type seriesKey struct{ sensor, metric string }

// series is the detection state of one sensor metric. Guarded by
// Detector.mu.
type series struct {
	key   seriesKey
	rules *ruleSet

	n        int64   // readings folded into mean and variance
	mean     float64 // exponentially weighted
	variance float64
	lastTS   time.Time // newest reading timestamp evaluated
	lastSeen time.Time // Detector clock when it was evaluated
	interval float64   // usual seconds between readings; 0 unknown
	// staleNotified is set once the current silence has raised (or, after
	// a restart, had already raised) an offline alert; a reading clears it.
	staleNotified bool

	kinds [numKinds]kindState
}

// kindState tracks the live alert of one series and kind, as far as the
// detector knows, and the changes to it not yet stored.
type kindState struct {
	live     bool
	gen      uint64 // bumped on every open, to match the worker's answers
	alertID  int64  // of the live alert once stored; 0 before
	severity string // of the live alert
	normal   int    // consecutive normal readings while live

	// Before an alert opens: the breaching readings in a row so far, when
	// the first was evaluated, and the worst of them.
	pending      int
	pendingSince time.Time
	// peak is the worst breach of the pending or live alert: its value,
	// limit or score and severity are what the alert shows, so that the
	// severity always matches the score shown next to it.
	peak peakBreach
	// Flapping: when recent alerts of this key opened, oldest first, and
	// whether the live one is flapping (kept open until FlapQuiet passed
	// without a breach), with the time of its last breach.
	opens      []time.Time
	flapping   bool
	lastBreach time.Time

	ops       []op      // changes waiting for the worker, in order
	queued    bool      // listed in Detector.dirty
	lastFlush time.Time // when the worker last took ops
}

// peakBreach is the worst reading of one alert: magnitude orders them
// (the score of a spike, the distance beyond the limit of a threshold).
type peakBreach struct {
	set       bool
	magnitude float64
	value     float64
	limit     float64
	severity  string
}

func (p *peakBreach) fold(magnitude, value, limit float64, sev string) {
	if !p.set || magnitude > p.magnitude {
		*p = peakBreach{set: true, magnitude: magnitude, value: value, limit: limit, severity: sev}
	}
}

// op is one change for the worker: a (coalesced) breach to upsert, or a
// resolve by the system.
type op struct {
	resolve bool
	breach  model.AlertBreach // !resolve
	at      time.Time         // resolve time
	gen     uint64            // the kindState.gen it belongs to
	// flapping is posted with the alert (the flapping field of the /ws
	// alert message); it is not stored.
	flapping bool
	// flag: no breach to store, only the live alert to post again with
	// flapping set (it was just found flapping).
	flag bool
	// urgent changes (open, escalate, resolve) go to the worker at once
	// and are measured: evaluated is when the deciding reading was
	// evaluated, readingTS its timestamp.
	urgent    bool
	evaluated time.Time
	readingTS time.Time
}

type opRef struct {
	s    *series
	kind int
}

// Detector is alert detection: an ingest.ReadingSink, the alert_ack and
// alert_resolve handlers and the alerts REST service. Create it with New;
// start it with Run.
type Detector struct {
	cfg    Config
	store  Store
	poster RoomPoster
	bc     Broadcaster
	log    *slog.Logger
	m      *metrics
	retry  backoff.Policy // the store, at start and for alert changes

	defaults *ruleSet // shared by every series without stored rules; never modified

	rulesMu sync.Mutex // serialises rule replacement (store + cache) with the initial load

	unwatchedLog  rate.Sometimes // silences of unwatched series: one line a minute
	checkpointLog rate.Sometimes // failed Handover checkpoints: one line a minute

	mu      sync.Mutex // guards everything below
	standby bool       // another instance leads: readings are not evaluated
	// seenSeq is the highest batch seq evaluated (for Handover
	// checkpoints and to know a batch seen twice; see freshLocked);
	// batchSeq the seq of the batch PublishReadings is evaluating.
	seenSeq  int64
	batchSeq int64
	loaded   bool
	pending  []model.Reading // readings received before loaded
	series   map[seriesKey]*series
	rules    map[string]map[string]*ruleSet // sensor → metric → stored rules
	// silences in force or until their expiry is noticed, by sensor; an
	// ended or expired one is removed (see expireSilences).
	silences map[string][]model.Silence
	dirty    []opRef // keys with ops for the worker
	wakeNow  bool    // dirty grew: wake the worker when the lock is released

	wake chan struct{} // capacity 1: "dirty is not empty"
}

// New returns a Detector that stores alerts in st, posts them through
// poster and tells every connection of rule and silence changes through
// bc. reg receives its metrics.
func New(cfg Config, st Store, poster RoomPoster, bc Broadcaster, reg prometheus.Registerer, log *slog.Logger) *Detector {
	cfg.defaults()
	d := &Detector{
		cfg: cfg, store: st, poster: poster, bc: bc, log: log, m: newMetrics(reg),
		retry:    backoff.Policy{Min: retryMin, Max: retryMax},
		series:   map[seriesKey]*series{},
		rules:    map[string]map[string]*ruleSet{},
		silences: map[string][]model.Silence{},
		wake:     make(chan struct{}, 1),

		unwatchedLog:  rate.Sometimes{First: 1, Interval: time.Minute},
		checkpointLog: rate.Sometimes{First: 1, Interval: time.Minute},
	}
	def := defaultRules()
	d.defaults = &def
	d.standby = cfg.Elector != nil
	return d
}

// PublishReadings evaluates a committed batch of readings. It is called
// by the ingest goroutine and never blocks on I/O: evaluation is a few
// map lookups and float operations per reading under d.mu; the rare
// changes go to the worker goroutine of Run.
func (d *Detector) PublishReadings(rs []model.Reading) {
	now := d.cfg.Now()
	d.mu.Lock()
	if d.standby {
		d.mu.Unlock()
		d.m.ignored.WithLabelValues(reasonStandby).Add(float64(len(rs)))
		return
	}
	if !d.loaded {
		room := d.cfg.MaxPending - len(d.pending)
		take := min(room, len(rs))
		d.pending = append(d.pending, rs[:take]...)
		d.mu.Unlock()
		if take < len(rs) {
			d.m.dropped.WithLabelValues(reasonNotReady).Add(float64(len(rs) - take))
		}
		return
	}
	d.evaluateBatchesLocked(rs, now)
	d.unlockAndSignal()
}

// evaluateBatchesLocked evaluates rs, whole batches in seq order, leaving
// out the batches evaluated before (freshLocked).
func (d *Detector) evaluateBatchesLocked(rs []model.Reading, now time.Time) {
	for i := range rs {
		if d.freshLocked(rs[i].Seq) {
			d.evaluateLocked(&rs[i], now)
		}
	}
	d.batchSeq = 0
}

// freshLocked reports whether a reading of the batch seq is to be
// evaluated: not if its batch was evaluated before (seq at most seenSeq,
// other than the batch being evaluated), as batches reflected in the
// statistics loaded at start or replayed from the previous leader are
// when they also arrive live; counted as ignored, already_evaluated.
// Batches come in seq order, each whole in one call; seq 0 (unknown) is
// always evaluated. Every committed reading is new (ingest hands on only
// fresh ones), so timestamps cannot tell a repeat: an older one is a
// reading committed out of time order, evaluated all the same.
func (d *Detector) freshLocked(seq int64) bool {
	if seq == 0 || seq == d.batchSeq {
		return true
	}
	if seq <= d.seenSeq {
		d.m.ignored.WithLabelValues(reasonEvaluated).Inc()
		return false
	}
	d.batchSeq, d.seenSeq = seq, seq
	return true
}

// unlockAndSignal must be called with d.mu held; it releases d.mu, then
// wakes the worker if something was marked dirty. The send never blocks:
// a pending wake-up covers it.
func (d *Detector) unlockAndSignal() {
	wake := d.wakeNow
	d.wakeNow = false
	d.mu.Unlock()
	if wake {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// seriesLocked returns the state of key, created if new and there is
// room.
func (d *Detector) seriesLocked(key seriesKey) *series {
	if s := d.series[key]; s != nil {
		return s
	}
	if len(d.series) >= d.cfg.MaxSeries {
		return nil
	}
	s := &series{key: key, rules: d.rulesForLocked(key)}
	d.series[key] = s
	d.m.series.Set(float64(len(d.series)))
	return s
}

func (d *Detector) evaluateLocked(r *model.Reading, now time.Time) {
	s := d.seriesLocked(seriesKey{r.SensorID, r.Metric})
	if s == nil {
		d.m.dropped.WithLabelValues(reasonTooManySeries).Inc()
		return
	}
	v := r.Value
	rules := s.rules
	th := rules.threshold
	// A reading older than the series' newest (a device's backlog, or
	// readings of one sensor spread over a share group, which commit out
	// of time order) says a limit was crossed when it was, so its breach
	// counts; it cannot say the condition has cleared now, nor be scored
	// against statistics that have moved past its time, nor tell the
	// interval or that the sensor is online.
	if !s.lastTS.IsZero() && !r.TS.After(s.lastTS) {
		d.m.late.Inc()
		if !th.enabled {
			return
		}
		if limit, beyond, ok := th.breached(v); ok {
			d.breachLocked(s, kThreshold, beyond, v, limit, th.severity(beyond), d.cfg.ThresholdOpenAfter, now, r.TS)
		}
		return
	}
	d.timedLocked(s, r.TS, now)

	// Threshold.
	if th.enabled && (th.min != nil || th.max != nil) {
		if limit, beyond, ok := th.breached(v); ok {
			d.breachLocked(s, kThreshold, beyond, v, limit, th.severity(beyond), d.cfg.ThresholdOpenAfter, now, r.TS)
		} else if th.inside(v, thresholdHysteresis*th.span()) {
			d.normalLocked(s, kThreshold, th.resolveAfter, now, r.TS)
		} else {
			d.holdLocked(s, kThreshold)
		}
	} else {
		d.normalLocked(s, kThreshold, th.resolveAfter, now, r.TS)
	}

	// Spike, against the statistics before this reading.
	sp := rules.spike
	if sp.enabled && s.n >= int64(sp.warmup) {
		sd := math.Sqrt(s.variance)
		// A constant signal has no spread; the floor keeps the score
		// finite (any change of a constant signal is then a spike).
		sd = math.Max(sd, 1e-9*math.Max(1, math.Abs(s.mean)))
		score := math.Abs(v-s.mean) / sd
		switch {
		case score > sp.k:
			sev := model.SeverityWarning
			if score > 2*sp.k {
				sev = model.SeverityCritical
			}
			d.breachLocked(s, kSpike, score, v, score, sev, d.cfg.SpikeOpenAfter, now, r.TS)
		case score <= hysteresis*sp.k:
			d.normalLocked(s, kSpike, sp.resolveAfter, now, r.TS)
		default:
			d.holdLocked(s, kSpike)
		}
		s.foldClipped(v, sp.k)
		return
	}
	d.normalLocked(s, kSpike, sp.resolveAfter, now, r.TS)
	s.fold(v)
}

// timedLocked takes the timestamp of a series' newest reading: the
// interval estimate, the last sign of life, and the end of an offline
// alert.
func (d *Detector) timedLocked(s *series, ts, now time.Time) {
	if !s.lastTS.IsZero() {
		dt := ts.Sub(s.lastTS).Seconds()
		if s.interval == 0 {
			s.interval = dt
		} else {
			// A long gap (a dropout) is clipped so that one outage does
			// not stretch the stale limit; a lasting slowdown still
			// raises the estimate by a fifth per reading.
			s.interval += intervalAlpha * (min(dt, 3*s.interval) - s.interval)
		}
	}
	s.lastTS = ts
	s.lastSeen = now
	s.staleNotified = false
	if s.kinds[kOffline].live {
		d.resolveLocked(s, kOffline, now, ts)
	}
}

// foldClipped folds v into the statistics after clipping it to k standard
// deviations of the mean (a winsorised EWMA): one wild reading then moves
// the mean and spread no more than a reading at the edge of normal does,
// so the spread stays tight for the readings after it. A lasting change
// of level is still learnt: each clipped reading widens the spread by
// about (1-alpha)(1+alpha*k*k) (x1.7 at k=4), so a new level becomes
// normal within a few dozen readings.
func (s *series) foldClipped(v, k float64) {
	if sd := math.Sqrt(s.variance); s.n > 0 && sd > 0 {
		v = math.Max(s.mean-k*sd, math.Min(s.mean+k*sd, v))
	}
	s.fold(v)
}

// fold adds v to the exponentially weighted mean and variance (West's
// incremental form). Spikes are folded in too, so that a lasting change
// of level becomes the new normal instead of an endless spike; the price
// is that a big spike widens the spread for a few dozen readings.
func (s *series) fold(v float64) {
	if s.n == 0 {
		s.mean, s.variance = v, 0
	} else {
		diff := v - s.mean
		incr := alpha * diff
		s.mean += incr
		s.variance = (1 - alpha) * (s.variance + diff*incr)
	}
	s.n++
}

// breachLocked records a breach of kind with the given magnitude (how
// bad it is: the score, or the distance beyond the limit). With no live
// alert, the breach counts towards opening one after openAfter breaches
// in a row (and Config.OpenFor); else it updates the live one (coalesced
// with updates not yet stored). The alert shows its worst breach.
func (d *Detector) breachLocked(s *series, kind int, magnitude, value, limit float64, sev string, openAfter int, now, readingTS time.Time) {
	ks := &s.kinds[kind]
	ks.normal = 0
	ks.lastBreach = now
	if !ks.live {
		if ks.pending == 0 {
			ks.pendingSince = now
			ks.peak = peakBreach{}
		}
		ks.pending++
		ks.peak.fold(magnitude, value, limit, sev)
		if ks.pending < openAfter || now.Sub(ks.pendingSince) < d.cfg.OpenFor {
			return
		}
		p := ks.peak
		b := model.AlertBreach{
			SensorID: s.key.sensor, Metric: s.key.metric, Kind: kindNames[kind], Severity: p.severity,
			Value: p.value, LimitOrScore: p.limit, FirstAt: ks.pendingSince, LastAt: now, Count: int64(ks.pending),
			SilenceID: d.silenceForLocked(s.key, kind, now),
		}
		ks.pending = 0
		ks.live = true
		ks.gen++
		ks.alertID = 0
		ks.severity = p.severity
		ks.flapping = false
		ks.opens = append(ks.opens, now)
		if len(ks.opens) > d.cfg.FlapOpens {
			ks.opens = ks.opens[len(ks.opens)-d.cfg.FlapOpens:]
		}
		d.appendOpLocked(s, kind, op{breach: b, gen: ks.gen, urgent: true, evaluated: now, readingTS: readingTS})
		d.markDirtyLocked(s, kind)
		return
	}
	ks.peak.fold(magnitude, value, limit, sev)
	p := ks.peak
	escalate := p.severity == model.SeverityCritical && ks.severity != model.SeverityCritical
	if escalate {
		ks.severity = p.severity
	}
	if n := len(ks.ops); n > 0 && !ks.ops[n-1].resolve && !ks.ops[n-1].flag {
		last := &ks.ops[n-1]
		last.breach.Count++
		last.breach.Value, last.breach.LimitOrScore, last.breach.LastAt = p.value, p.limit, now
		last.breach.Severity = ks.severity
		last.flapping = ks.flapping
		if escalate && !last.urgent {
			last.urgent, last.evaluated, last.readingTS = true, now, readingTS
		}
		d.m.coalesced.Inc()
	} else {
		b := model.AlertBreach{
			SensorID: s.key.sensor, Metric: s.key.metric, Kind: kindNames[kind], Severity: ks.severity,
			Value: p.value, LimitOrScore: p.limit, FirstAt: now, LastAt: now, Count: 1,
		}
		d.appendOpLocked(s, kind, op{breach: b, gen: ks.gen, urgent: escalate, evaluated: now, readingTS: readingTS, flapping: ks.flapping})
	}
	if escalate || now.Sub(ks.lastFlush) >= d.cfg.UpdateInterval {
		d.markDirtyLocked(s, kind)
	}
}

// holdLocked records a reading that neither breaches nor is normal (within
// the hysteresis band): it ends a run of pending breaches and a run of
// normal readings.
func (d *Detector) holdLocked(s *series, kind int) {
	ks := &s.kinds[kind]
	ks.pending = 0
	ks.normal = 0
}

// normalLocked counts a normal reading towards resolving a live alert of
// kind after resolveAfter of them in a row. An alert that opened
// FlapOpens times within FlapWindow is flapping instead: it is kept open
// (and posted as flapping) until FlapQuiet has passed without a breach.
func (d *Detector) normalLocked(s *series, kind, resolveAfter int, now, readingTS time.Time) {
	ks := &s.kinds[kind]
	ks.pending = 0
	if !ks.live {
		return
	}
	ks.normal++
	if ks.normal < resolveAfter {
		return
	}
	if !ks.flapping && len(ks.opens) >= d.cfg.FlapOpens && now.Sub(ks.opens[len(ks.opens)-d.cfg.FlapOpens]) <= d.cfg.FlapWindow {
		ks.flapping = true
		d.m.flapping.WithLabelValues(kindNames[kind]).Inc()
		// Posted at once: the alert as it is, now marked flapping.
		d.appendOpLocked(s, kind, op{flag: true, gen: ks.gen, flapping: true})
		d.markDirtyLocked(s, kind)
	}
	if ks.flapping && now.Sub(ks.lastBreach) < d.cfg.FlapQuiet {
		return
	}
	d.resolveLocked(s, kind, now, readingTS)
}

func (d *Detector) resolveLocked(s *series, kind int, now, readingTS time.Time) {
	ks := &s.kinds[kind]
	ks.live = false
	ks.normal = 0
	ks.alertID = 0
	flapping := ks.flapping
	if flapping {
		// It was kept open until quiet: the episode is over, start
		// counting opens afresh.
		ks.flapping = false
		ks.opens = ks.opens[:0]
	}
	d.appendOpLocked(s, kind, op{resolve: true, at: now, gen: ks.gen, urgent: true, evaluated: now, readingTS: readingTS, flapping: flapping})
	d.markDirtyLocked(s, kind)
}

// appendOpLocked queues o. While the store fails, changes of one key pile
// up; beyond maxOps the oldest resolve-then-reopen pair in the queue is
// folded away (the alert is shown as having stayed live), so memory stays
// bounded and the latest state is still what gets stored.
func (d *Detector) appendOpLocked(s *series, kind int, o op) {
	ks := &s.kinds[kind]
	if len(ks.ops) >= maxOps {
		for i := 0; i+2 < len(ks.ops); i++ {
			a, r, b := &ks.ops[i], ks.ops[i+1], ks.ops[i+2]
			if a.resolve || !r.resolve || b.resolve {
				continue
			}
			a.breach.Count += b.breach.Count
			a.breach.Value, a.breach.LimitOrScore, a.breach.LastAt = b.breach.Value, b.breach.LimitOrScore, b.breach.LastAt
			if b.breach.Severity == model.SeverityCritical {
				a.breach.Severity = b.breach.Severity
			}
			// The merged op carries the newer generation, so the worker
			// can still tell the live alert's id.
			a.gen = b.gen
			ks.ops = append(ks.ops[:i+1], ks.ops[i+3:]...)
			d.m.dropped.WithLabelValues(reasonBacklogFull).Inc()
			break
		}
	}
	ks.ops = append(ks.ops, o)
}

func (d *Detector) markDirtyLocked(s *series, kind int) {
	ks := &s.kinds[kind]
	if ks.queued {
		return
	}
	ks.queued = true
	d.dirty = append(d.dirty, opRef{s, kind})
	d.wakeNow = true
}

// checkLocked raises offline alerts for series silent for longer than
// their stale limit, and hands held-back updates that are due to the
// worker. Called by Run's goroutine every CheckInterval.
func (d *Detector) checkLocked(now time.Time) {
	unwatched := 0
	for _, s := range d.series {
		st := s.rules.stale
		if st.enabled && !s.staleNotified && !s.lastSeen.IsZero() {
			limit := st.limit(s.interval)
			if silent := now.Sub(s.lastSeen); silent > limit {
				s.staleNotified = true
				if !d.watchedLocked(s) {
					unwatched++
				} else if !s.kinds[kOffline].live {
					b := model.AlertBreach{
						SensorID: s.key.sensor, Metric: s.key.metric, Kind: model.AlertOffline,
						Severity: model.SeverityWarning, Value: roundSeconds(silent), LimitOrScore: roundSeconds(limit),
						FirstAt: now, LastAt: now, Count: 1, SilenceID: d.silenceForLocked(s.key, kOffline, now),
					}
					ks := &s.kinds[kOffline]
					ks.live = true
					ks.gen++
					ks.alertID = 0
					ks.severity = b.Severity
					d.appendOpLocked(s, kOffline, op{breach: b, gen: ks.gen, urgent: true, evaluated: now})
					d.markDirtyLocked(s, kOffline)
				}
			}
		}
		for k := range s.kinds {
			ks := &s.kinds[k]
			if len(ks.ops) > 0 && !ks.queued && now.Sub(ks.lastFlush) >= d.cfg.UpdateInterval {
				d.markDirtyLocked(s, k)
			}
		}
	}
	if unwatched > 0 {
		d.m.unwatched.Add(float64(unwatched))
		d.unwatchedLog.Do(func() {
			d.log.Info("alerts: silent series not reported offline: too few readings to be regular, no stale rule, not a registered device (at most one line a minute)",
				"series", unwatched)
		})
	}
}

// watchedLocked reports whether the stale check may report s offline:
// only a series an operator set a stale rule for, a registered device's
// (Config.RegisteredOnly), or one that has sent regularReadings readings
// (seeded statistics count), so that it has a usual interval. Without
// this, anyone who can publish could invent thousands of sensor ids with
// one reading each and have every one reported offline a minute later.
func (d *Detector) watchedLocked(s *series) bool {
	return d.cfg.RegisteredOnly || s.rules.stale.stored || s.n >= regularReadings
}

func roundSeconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }
