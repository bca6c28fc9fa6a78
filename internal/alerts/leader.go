package alerts

import (
	"context"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// Elector elects the one detector that stores and posts alerts among the
// instances sharing a database (serve backs it with a PostgreSQL advisory
// lock). With none, the detector leads alone, as a single instance does.
type Elector interface {
	// Lead blocks until this instance leads, or ctx ends (then it returns
	// ctx's error).
	Lead(ctx context.Context) (Term, error)
}

// Term is one period of leadership.
type Term interface {
	// Lost is closed when leadership is lost (the connection holding it
	// died): another instance may lead from then on.
	Lost() <-chan struct{}
	// Release gives leadership up; called once, when the term ends.
	Release()
}

// Handover is what a new leader needs to evaluate the readings the
// previous one did not: a checkpoint the leader keeps ("every reading up
// to this batch seq evaluated, its changes stored") and the committed
// stream by seq (serve backs it with the settings table and the readings).
type Handover interface {
	// Checkpoint returns the last checkpoint saved and when (zero: none).
	Checkpoint(ctx context.Context) (seq int64, at time.Time, err error)
	SaveCheckpoint(ctx context.Context, seq int64, at time.Time) error
	// LastReadingSeq is the highest seq committed or rolled back.
	LastReadingSeq(ctx context.Context) (int64, error)
	// ReadingsInSeqRange returns up to limit readings of the batches from
	// to to, in seq order.
	ReadingsInSeqRange(ctx context.Context, from, to int64, limit int) ([]model.Reading, error)
}

// Handover bounds.
const (
	// checkpointLag: the checkpoint saved at a tick is the seq seen two
	// ticks before, so that the changes it covers, updates held back by
	// UpdateInterval included, have been stored by then. A new leader
	// replays those ticks again: at worst a breach counted twice.
	checkpointLag = 2
	// maxHandoverAge: a checkpoint older than this is not followed (a
	// cluster stopped for a while, or run without a share group since):
	// the new leader starts cold, as at a restart.
	maxHandoverAge = 2 * time.Minute
)

// runElected runs detection in every term this instance wins. Between
// terms the detector stands by: it evaluates nothing and holds no state.
// On winning a term it loads its state as at a start (rules, silences,
// live alerts, recent statistics), so it continues the alerts the
// previous leader stored. On losing one it drops what it had not stored:
// the next leader works from what is in the database.
func (d *Detector) runElected(ctx context.Context, e Elector) error {
	for {
		term, err := e.Lead(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return errorf("lead", err)
		}
		d.m.leader.Set(1)
		d.log.Info("alerts: this instance now runs alert detection")
		err = d.lead(ctx, term.Lost())
		term.Release()
		d.m.leader.Set(0)
		if err != nil || ctx.Err() != nil {
			return err
		}
		d.log.Warn("alerts: lost the lead of alert detection; changes not stored are left to the next leader")
		d.standDown()
	}
}

// lead runs detection until ctx is done (then it stores what is pending,
// see shutdown) or lost is closed (then it stops at once).
func (d *Detector) lead(ctx context.Context, lost <-chan struct{}) error {
	d.mu.Lock()
	d.standby = false // readings from now on wait in pending for the load
	d.mu.Unlock()
	if err := d.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t := time.NewTicker(d.cfg.CheckInterval)
	defer t.Stop()
	var marks [checkpointLag]int64 // seqs seen at the last ticks, oldest first
	var refresh <-chan time.Time   // rules and silences changed elsewhere; elected leaders only
	if lost != nil {
		rt := time.NewTicker(d.cfg.Refresh)
		defer rt.Stop()
		refresh = rt.C
	}
	for {
		select {
		case <-ctx.Done():
			d.shutdown(ctx)
			return nil
		case <-lost:
			return nil
		case <-refresh:
			if err := d.refreshConfig(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("alerts: could not reload rules and silences; retrying at the next refresh", "err", err)
			}
		case <-t.C:
			d.expireSilences(d.cfg.Now())
			d.mu.Lock()
			seen := d.seenSeq
			d.checkLocked(d.cfg.Now())
			d.unlockAndSignal()
			if lost != nil && d.cfg.Handover != nil {
				d.checkpoint(ctx, marks[:], seen)
			}
		case <-d.wake:
			d.flush(ctx)
		}
	}
}

// standDown forgets every series, rule and silence: the state of a
// detector that does not lead, until load fills it again.
func (d *Detector) standDown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.standby = true
	d.loaded = false
	d.seenSeq = 0
	d.pending = nil
	d.dirty = nil
	d.wakeNow = false
	d.series = map[seriesKey]*series{}
	d.rules = map[string]map[string]*ruleSet{}
	clear(d.silences)
	d.m.series.Set(0)
	d.m.pending.Set(0)
	select {
	case <-d.wake:
	default:
	}
}

// refreshConfig reloads the rules and the silences in force from the
// store: with several instances a change is stored by whichever instance
// received the request, and only that one's memory hears of it. Run by
// the leader's goroutine every Config.Refresh. Silences that expired are
// counted first (expireSilences), so that the reload does not hide them.
func (d *Detector) refreshConfig(ctx context.Context) error {
	now := d.cfg.Now()
	d.expireSilences(now)
	d.rulesMu.Lock()
	defer d.rulesMu.Unlock()
	rules, err := d.store.AlertRules(ctx, "")
	if err != nil {
		return err
	}
	silences, err := d.store.Silences(ctx, model.SilenceFilter{InForce: now})
	if err != nil {
		return err
	}
	bySensor := map[string][]model.AlertRule{}
	for _, r := range rules {
		bySensor[r.SensorID] = append(bySensor[r.SensorID], r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for sensor := range d.rules {
		if _, ok := bySensor[sensor]; !ok {
			d.installRulesLocked(sensor, nil) // deleted elsewhere: the defaults apply
		}
	}
	for sensor, rs := range bySensor {
		d.installRulesLocked(sensor, rs)
	}
	clear(d.silences)
	for _, si := range silences {
		d.installSilenceLocked(si)
	}
	return nil
}

// checkpoint stores the changes decided so far, then saves the oldest
// mark as the checkpoint and shifts seen in. Run's goroutine.
func (d *Detector) checkpoint(ctx context.Context, marks []int64, seen int64) {
	if !d.flush(ctx) {
		return
	}
	if marks[0] > 0 {
		if err := d.cfg.Handover.SaveCheckpoint(ctx, marks[0], d.cfg.Now()); err != nil && ctx.Err() == nil {
			d.checkpointLog.Do(func() {
				d.log.Warn("alerts: could not save the detection checkpoint (at most one line a minute)", "err", err)
			})
		}
	}
	copy(marks, marks[1:])
	marks[len(marks)-1] = seen
}

// handoverReadings returns the readings committed after the previous
// leader's checkpoint, for loadOnce to evaluate before anything else: the
// previous leader may have died before evaluating them or storing what
// they decided. None without a Handover, without a checkpoint, or with
// one older than maxHandoverAge. At most MaxPending, the newest (the rest
// counted as dropped, not_ready).
func (d *Detector) handoverReadings(ctx context.Context) ([]model.Reading, error) {
	h := d.cfg.Handover
	if h == nil || d.cfg.Elector == nil {
		return nil, nil
	}
	from, at, err := h.Checkpoint(ctx)
	if err != nil || from == 0 || d.cfg.Now().Sub(at) > maxHandoverAge {
		return nil, err
	}
	to, err := h.LastReadingSeq(ctx)
	if err != nil || to <= from {
		return nil, err
	}
	rs, err := h.ReadingsInSeqRange(ctx, from+1, to, d.cfg.MaxPending+1)
	if err != nil {
		return nil, err
	}
	if n := len(rs) - d.cfg.MaxPending; n > 0 {
		d.m.dropped.WithLabelValues(reasonNotReady).Add(float64(n))
		d.log.Warn("alerts: more readings to replay from the previous leader than MaxPending; the oldest are not evaluated", "dropped", n)
		rs = rs[n:]
	}
	return rs, nil
}

// replayLocked evaluates readings already stored (handoverReadings), in
// seq order. The loaded statistics reflect them too (as they reflect
// every committed reading): they are evaluated for what they decide, not
// skipped as already evaluated; the batches they belong to are then
// seen.
func (d *Detector) replayLocked(rs []model.Reading, now time.Time) {
	for i := range rs {
		d.evaluateLocked(&rs[i], now)
		d.seenSeq = max(d.seenSeq, rs[i].Seq)
	}
}
