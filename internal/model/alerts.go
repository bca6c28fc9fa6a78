package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Alert kinds.
const (
	AlertThreshold = "threshold" // value outside [min, max]
	AlertSpike     = "spike"     // value far from the sensor's recent mean
	AlertOffline   = "offline"   // no reading for longer than the stale limit
)

// Alert severities.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert states.
const (
	AlertOpen         = "open"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// ResolvedBySystem is the resolved_by of alerts that resolved by themselves.
const ResolvedBySystem = "system"

// MaxAlertNote bounds the note of alert_resolve, in characters.
const MaxAlertNote = 2000

// Alert is one anomaly of one sensor metric and its lifecycle. Its JSON is
// the alert of the /ws protocol and the REST API.
type Alert struct {
	ID       int64  `json:"id"`
	SensorID string `json:"sensor_id"`
	Metric   string `json:"metric"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Value is the reading that breached (threshold, spike), or the seconds
	// without a reading when the sensor was found offline.
	Value float64 `json:"value"`
	// LimitOrScore is the crossed limit (threshold), the deviation in
	// standard deviations (spike) or the stale limit in seconds (offline).
	LimitOrScore float64    `json:"limit_or_score"`
	State        string     `json:"state"`
	OpenedAt     time.Time  `json:"opened_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Count        int64      `json:"count"` // breaches folded into this alert
	AckedBy      *string    `json:"acked_by"`
	ResolvedBy   *string    `json:"resolved_by"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	// EventID increases with every change of any alert; it is the cursor
	// a client resumes alerts from after a reconnect.
	EventID int64 `json:"event_id"`
	// SilenceID is the silence in force when the alert opened (0: none):
	// the alert is stored and shown but not announced. In the JSON only
	// when set.
	SilenceID int64 `json:"silence_id,omitempty"`
	// Note is what the resolver wrote. It is not part of the alert's JSON,
	// which the protocol fixes; GET /api/alerts/{id} shows it beside it.
	Note string `json:"-"`
}

// MarshalJSON writes the alert in the protocol's field order and
// timestamp form.
func (a Alert) MarshalJSON() ([]byte, error) {
	var resolvedAt *string
	if a.ResolvedAt != nil {
		s := a.ResolvedAt.UTC().Format(TimeFormat)
		resolvedAt = &s
	}
	return json.Marshal(struct {
		ID           int64   `json:"id"`
		SensorID     string  `json:"sensor_id"`
		Metric       string  `json:"metric"`
		Kind         string  `json:"kind"`
		Severity     string  `json:"severity"`
		Value        float64 `json:"value"`
		LimitOrScore float64 `json:"limit_or_score"`
		State        string  `json:"state"`
		OpenedAt     string  `json:"opened_at"`
		UpdatedAt    string  `json:"updated_at"`
		Count        int64   `json:"count"`
		AckedBy      *string `json:"acked_by"`
		ResolvedBy   *string `json:"resolved_by"`
		ResolvedAt   *string `json:"resolved_at"`
		EventID      int64   `json:"event_id"`
		SilenceID    int64   `json:"silence_id,omitempty"`
	}{a.ID, a.SensorID, a.Metric, a.Kind, a.Severity, a.Value, a.LimitOrScore, a.State,
		a.OpenedAt.UTC().Format(TimeFormat), a.UpdatedAt.UTC().Format(TimeFormat), a.Count, a.AckedBy, a.ResolvedBy, resolvedAt, a.EventID,
		a.SilenceID})
}

// Live reports whether the alert is open or acknowledged.
func (a Alert) Live() bool { return a.State == AlertOpen || a.State == AlertAcknowledged }

// AlertFilter selects alerts for a list, newest first.
type AlertFilter struct {
	States   []string // empty: any state
	SensorID string   // empty: any sensor
	BeforeID int64    // >0: only alerts with a smaller id (the next page)
	Limit    int
}

// AlertBreach is one (possibly coalesced) breach of a rule, to be folded
// into the live alert of its sensor, metric and kind, or to open one.
type AlertBreach struct {
	SensorID     string
	Metric       string
	Kind         string
	Severity     string // the worst of the coalesced breaches
	Value        float64
	LimitOrScore float64
	FirstAt      time.Time // opened_at when this opens the alert
	LastAt       time.Time // updated_at
	Count        int64     // breaches coalesced, at least 1
	// SilenceID is the silence in force when the breach was evaluated
	// (0: none); stored only when the breach opens the alert.
	SilenceID int64
}

// Rule kinds: what PUT /api/sensors/{id}/rules configures. "stale" is the
// rule whose alerts have kind offline.
const (
	RuleThreshold = "threshold"
	RuleSpike     = "spike"
	RuleStale     = "stale"
)

// Defaults when no rule is stored (docs/alerts.md).
const (
	DefaultSpikeK       = 4.0 // standard deviations
	DefaultSpikeWarmup  = 30  // readings before a spike may fire
	DefaultResolveAfter = 5   // consecutive normal readings to auto-resolve
	DefaultStaleMin     = 60 * time.Second
	DefaultStaleFactor  = 10 // times the sensor's usual interval
)

// Bounds of rule values.
const (
	MaxRulesPerSensor = 100
	MinSpikeWarmup    = DefaultSpikeWarmup
	MaxSpikeWarmup    = 100000
	MaxSpikeK         = 1000
	MaxResolveAfter   = 1000
	MinStaleAfter     = 1.0             // seconds
	MaxStaleAfter     = 7 * 24 * 3600.0 // seconds
)

// AlertRule is one stored detection rule of one sensor metric. Only the
// fields of its kind are set: Min/Max (threshold), K/Warmup (spike),
// AfterSeconds (stale); ResolveAfter for threshold and spike. A nil field
// takes the default.
type AlertRule struct {
	SensorID     string    `json:"sensor_id"`
	Metric       string    `json:"metric"`
	Kind         string    `json:"kind"`
	Enabled      bool      `json:"enabled"`
	Min          *float64  `json:"min,omitempty"`
	Max          *float64  `json:"max,omitempty"`
	K            *float64  `json:"k,omitempty"`
	Warmup       *int      `json:"warmup,omitempty"`
	AfterSeconds *float64  `json:"after_seconds,omitempty"`
	ResolveAfter *int      `json:"resolve_after,omitempty"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ValidateAlertRules checks a sensor's complete rule set as PUT sends it.
// Its errors are meant for the operator who sent the rules: each names
// the rule (by index, metric and kind) and what is wrong with it.
func ValidateAlertRules(rules []AlertRule) error {
	if len(rules) > MaxRulesPerSensor {
		return fmt.Errorf("at most %d rules per sensor, got %d", MaxRulesPerSensor, len(rules))
	}
	type key struct{ metric, kind string }
	seen := make(map[key]int, len(rules))
	var errs []error
	for i, r := range rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Metric != "" && r.Kind != "" {
			where = fmt.Sprintf("rules[%d] (%s %s)", i, r.Metric, r.Kind)
		}
		if err := validateRule(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		k := key{r.Metric, r.Kind}
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("%s: same metric and kind as rules[%d]; merge them", where, j))
			continue
		}
		seen[k] = i
	}
	return errors.Join(errs...)
}

func validateRule(r AlertRule) error {
	if err := ValidID(r.Metric); err != nil {
		return fmt.Errorf("metric: %w", err)
	}
	notFor := func(field string, set bool) error {
		if set {
			return fmt.Errorf("%s does not apply to kind %s", field, r.Kind)
		}
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	finite := func(name string, p *float64) {
		if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
			add(fmt.Errorf("%s must be a finite number", name))
		}
	}
	resolveAfter := func() {
		if r.ResolveAfter != nil && (*r.ResolveAfter < 1 || *r.ResolveAfter > MaxResolveAfter) {
			add(fmt.Errorf("resolve_after must be an integer from 1 to %d (normal readings before the alert resolves itself)", MaxResolveAfter))
		}
	}
	switch r.Kind {
	case RuleThreshold:
		add(notFor("k", r.K != nil))
		add(notFor("warmup", r.Warmup != nil))
		add(notFor("after_seconds", r.AfterSeconds != nil))
		finite("min", r.Min)
		finite("max", r.Max)
		if r.Enabled && r.Min == nil && r.Max == nil {
			add(errors.New("a threshold needs min, max or both"))
		}
		if r.Min != nil && r.Max != nil && !(*r.Min < *r.Max) {
			add(fmt.Errorf("min (%g) must be less than max (%g)", *r.Min, *r.Max))
		}
		resolveAfter()
	case RuleSpike:
		add(notFor("min", r.Min != nil))
		add(notFor("max", r.Max != nil))
		add(notFor("after_seconds", r.AfterSeconds != nil))
		finite("k", r.K)
		if r.K != nil && !(*r.K > 0 && *r.K <= MaxSpikeK) {
			add(fmt.Errorf("k must be greater than 0 and at most %d (standard deviations)", MaxSpikeK))
		}
		if r.Warmup != nil && (*r.Warmup < MinSpikeWarmup || *r.Warmup > MaxSpikeWarmup) {
			add(fmt.Errorf("warmup must be an integer from %d to %d (readings before a spike may fire)", MinSpikeWarmup, MaxSpikeWarmup))
		}
		resolveAfter()
	case RuleStale:
		add(notFor("min", r.Min != nil))
		add(notFor("max", r.Max != nil))
		add(notFor("k", r.K != nil))
		add(notFor("warmup", r.Warmup != nil))
		add(notFor("resolve_after (offline alerts resolve on the next reading)", r.ResolveAfter != nil))
		finite("after_seconds", r.AfterSeconds)
		if r.AfterSeconds != nil && !(*r.AfterSeconds >= MinStaleAfter && *r.AfterSeconds <= MaxStaleAfter) {
			add(fmt.Errorf("after_seconds must be from %g to %g", MinStaleAfter, MaxStaleAfter))
		}
	case "":
		return errors.New(`kind is required: "threshold", "spike" or "stale"`)
	default:
		return fmt.Errorf(`unknown kind %q: want "threshold", "spike" or "stale"`, r.Kind)
	}
	return errors.Join(errs...)
}

// SeriesStats summarises the recent readings of one sensor metric (the
// newest N of them), for alert detection to resume from after a restart.
type SeriesStats struct {
	SensorID  string
	Metric    string
	LastSeen  time.Time // ts of the latest reading
	LastValue float64
	N         int64 // readings summarised
	Mean      float64
	StdDev    float64
	Span      time.Duration // from the oldest to the newest of them
}
