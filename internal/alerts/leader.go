package alerts

import (
	"context"
	"time"
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
	for {
		select {
		case <-ctx.Done():
			d.shutdown(ctx)
			return nil
		case <-lost:
			return nil
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
