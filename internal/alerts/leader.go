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
	var refresh <-chan time.Time // rules and silences changed elsewhere; elected leaders only
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
			d.checkLocked(d.cfg.Now())
			d.unlockAndSignal()
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
