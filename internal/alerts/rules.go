package alerts

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// ruleSet is the effective rules of one sensor metric: the stored ones
// over the defaults. It is immutable once built; series share it.
type ruleSet struct {
	threshold thresholdRule
	spike     spikeRule
	stale     staleRule
}

type thresholdRule struct {
	enabled      bool
	min, max     *float64
	resolveAfter int
}

type spikeRule struct {
	enabled      bool
	k            float64
	warmup       int
	resolveAfter int
}

type staleRule struct {
	enabled bool
	after   time.Duration // 0: derived from the usual interval
	stored  bool          // set by an operator, not the default: watched from the first reading
}

// defaultRules apply to a sensor metric without stored rules: no
// threshold, spikes beyond 4 standard deviations after 30 readings,
// offline after max(60 s, 10 × the usual interval), auto-resolve after 5
// normal readings.
func defaultRules() ruleSet {
	return ruleSet{
		threshold: thresholdRule{enabled: false, resolveAfter: model.DefaultResolveAfter},
		spike:     spikeRule{enabled: true, k: model.DefaultSpikeK, warmup: model.DefaultSpikeWarmup, resolveAfter: model.DefaultResolveAfter},
		stale:     staleRule{enabled: true},
	}
}

// breached reports whether v is outside [min, max], and if so the limit
// it crossed and by how much.
func (t thresholdRule) breached(v float64) (limit, beyond float64, ok bool) {
	if t.min != nil && v < *t.min {
		return *t.min, *t.min - v, true
	}
	if t.max != nil && v > *t.max {
		return *t.max, v - *t.max, true
	}
	return 0, 0, false
}

// inside reports whether v is within the limits by at least margin.
func (t thresholdRule) inside(v, margin float64) bool {
	return (t.min == nil || v >= *t.min+margin) && (t.max == nil || v <= *t.max-margin)
}

// severity is the severity of a breach beyond its limit by beyond:
// critical past criticalMargin of the span, else warning.
func (t thresholdRule) severity(beyond float64) string {
	if beyond > criticalMargin*t.span() {
		return model.SeverityCritical
	}
	return model.SeverityWarning
}

// span is what the critical margin is a share of: the width of [min, max]
// when both are set, else the size of the one limit (1 for a limit of 0).
func (t thresholdRule) span() float64 {
	switch {
	case t.min != nil && t.max != nil:
		return *t.max - *t.min
	case t.max != nil:
		return math.Max(math.Abs(*t.max), 1)
	case t.min != nil:
		return math.Max(math.Abs(*t.min), 1)
	}
	return 1
}

// limit is the silence after which a series is offline: the rule's
// after_seconds, else max(60 s, 10 × the usual interval in seconds).
func (s staleRule) limit(interval float64) time.Duration {
	if s.after > 0 {
		return s.after
	}
	return max(model.DefaultStaleMin, time.Duration(model.DefaultStaleFactor*interval*float64(time.Second)))
}

// buildRuleSets turns the stored rules of one sensor into rule sets per
// metric.
func buildRuleSets(rules []model.AlertRule) map[string]*ruleSet {
	out := map[string]*ruleSet{}
	for _, r := range rules {
		rs := out[r.Metric]
		if rs == nil {
			def := defaultRules()
			rs = &def
			out[r.Metric] = rs
		}
		switch r.Kind {
		case model.RuleThreshold:
			rs.threshold = thresholdRule{enabled: r.Enabled, min: r.Min, max: r.Max, resolveAfter: orInt(r.ResolveAfter, model.DefaultResolveAfter)}
		case model.RuleSpike:
			rs.spike = spikeRule{enabled: r.Enabled, k: orFloat(r.K, model.DefaultSpikeK),
				warmup: orInt(r.Warmup, model.DefaultSpikeWarmup), resolveAfter: orInt(r.ResolveAfter, model.DefaultResolveAfter)}
		case model.RuleStale:
			var after time.Duration
			if r.AfterSeconds != nil {
				after = time.Duration(*r.AfterSeconds * float64(time.Second))
			}
			rs.stale = staleRule{enabled: r.Enabled, after: after, stored: true}
		}
	}
	return out
}

func orInt(p *int, def int) int {
	if p != nil {
		return *p
	}
	return def
}

func orFloat(p *float64, def float64) float64 {
	if p != nil {
		return *p
	}
	return def
}

func (d *Detector) rulesForLocked(key seriesKey) *ruleSet {
	if rs := d.rules[key.sensor][key.metric]; rs != nil {
		return rs
	}
	return d.defaults
}

// installRulesLocked replaces the cached rules of sensor and points its
// series at them.
func (d *Detector) installRulesLocked(sensor string, rules []model.AlertRule) {
	sets := buildRuleSets(rules)
	if len(sets) == 0 {
		delete(d.rules, sensor)
	} else {
		d.rules[sensor] = sets
	}
	for key, s := range d.series {
		if key.sensor == sensor {
			s.rules = d.rulesForLocked(key)
		}
	}
}

// Rules returns the stored rules of sensorID (the defaults apply where
// there are none).
func (d *Detector) Rules(ctx context.Context, sensorID string) ([]model.AlertRule, error) {
	rs, err := d.store.AlertRules(ctx, sensorID)
	if err != nil {
		return nil, fmt.Errorf("alerts: rules: %w", err)
	}
	return rs, nil
}

// SetRules replaces every stored rule of sensorID with rules, on behalf of
// user, and applies them to the next reading. rules must pass
// model.ValidateAlertRules. It returns the stored rules.
func (d *Detector) SetRules(ctx context.Context, sensorID, user string, rules []model.AlertRule) ([]model.AlertRule, error) {
	if err := model.ValidID(sensorID); err != nil {
		return nil, fmt.Errorf("alerts: set rules: sensor id: %w", err)
	}
	if err := model.ValidateAlertRules(rules); err != nil {
		return nil, fmt.Errorf("alerts: set rules: %w", err)
	}
	// Held across store and cache, so that the cache ends up with the
	// last write even when two PUTs (or a PUT and the start-up load) race.
	d.rulesMu.Lock()
	defer d.rulesMu.Unlock()
	stored, err := d.store.ReplaceAlertRules(ctx, sensorID, user, d.cfg.Now(), rules)
	if err != nil {
		return nil, fmt.Errorf("alerts: set rules: %w", err)
	}
	d.mu.Lock()
	// The cache keeps sensorID: a copy, since callers may pass strings
	// that alias reused buffers (Fiber's path parameters do).
	d.installRulesLocked(strings.Clone(sensorID), stored)
	d.mu.Unlock()
	d.log.Info("alert rules replaced", "sensor_id", sensorID, "user", user, "rules", len(stored))
	d.broadcast(protocol.TypeRulesChanged, protocol.RulesChanged{
		SensorID: sensorID, UpdatedBy: user, UpdatedAt: protocol.FormatTime(d.cfg.Now()),
	})
	return stored, nil
}
