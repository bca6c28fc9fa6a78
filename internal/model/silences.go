package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a silence (docs/alerts.md, "Silences").
const (
	MaxSilence       = 30 * 24 * time.Hour // the longest silence one request may set
	MaxSilenceReason = 500                 // characters
)

// Silence mutes the announcements of one sensor's alerts (Metric and Kind
// empty) or of one of its rules (Metric and a rule kind: threshold, spike
// or stale) from CreatedAt until Until, or until someone ends it
// (EndedBy, EndedAt). Its JSON is the silence of GET /api/silences and of
// the /ws silence message.
type Silence struct {
	ID        int64
	SensorID  string
	Metric    string // "": every metric
	Kind      string // "": every rule kind; else RuleThreshold, RuleSpike or RuleStale
	Reason    string
	CreatedBy string
	CreatedAt time.Time
	Until     time.Time
	EndedBy   *string
	EndedAt   *time.Time
}

// InForce reports whether the silence mutes alerts at t: not ended, and t
// before Until.
func (s Silence) InForce(t time.Time) bool { return s.EndedAt == nil && t.Before(s.Until) }

// Covers reports whether the silence applies to alerts of sensorID,
// metric and rule kind (RuleStale for offline alerts), whether in force
// or not.
func (s Silence) Covers(sensorID, metric, ruleKind string) bool {
	return s.SensorID == sensorID && (s.Metric == "" || (s.Metric == metric && s.Kind == ruleKind))
}

// RuleKindOf is the rule kind whose breach opens alerts of alertKind: an
// offline alert comes from the stale rule, the others share their name.
func RuleKindOf(alertKind string) string {
	if alertKind == AlertOffline {
		return RuleStale
	}
	return alertKind
}

// MarshalJSON writes the silence with the protocol's timestamps; metric
// and kind are null for a whole-sensor silence.
func (s Silence) MarshalJSON() ([]byte, error) {
	var endedAt *string
	if s.EndedAt != nil {
		e := s.EndedAt.UTC().Format(TimeFormat)
		endedAt = &e
	}
	return json.Marshal(struct {
		ID        int64   `json:"id"`
		SensorID  string  `json:"sensor_id"`
		Metric    *string `json:"metric"`
		Kind      *string `json:"kind"`
		Reason    string  `json:"reason"`
		CreatedBy string  `json:"created_by"`
		CreatedAt string  `json:"created_at"`
		Until     string  `json:"until"`
		EndedBy   *string `json:"ended_by"`
		EndedAt   *string `json:"ended_at"`
	}{s.ID, s.SensorID, nilIfEmpty(s.Metric), nilIfEmpty(s.Kind), s.Reason, s.CreatedBy,
		s.CreatedAt.UTC().Format(TimeFormat), s.Until.UTC().Format(TimeFormat), s.EndedBy, endedAt})
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ValidateSilence checks a new silence as POST /api/silences sends it,
// at now: a valid sensor id; metric and kind both empty or both set (a
// valid metric, a rule kind); Until after now and at most MaxSilence
// ahead; a reason of at most MaxSilenceReason characters. Its errors name
// every field that is wrong, for the operator who sent it.
func ValidateSilence(s Silence, now time.Time) error {
	var errs []error
	if err := ValidID(s.SensorID); err != nil {
		errs = append(errs, fmt.Errorf("sensor_id: %w", err))
	}
	switch {
	case s.Metric == "" && s.Kind == "":
	case s.Metric == "" || s.Kind == "":
		errs = append(errs, errors.New("metric and kind go together: both to silence one rule, neither to silence the whole sensor"))
	default:
		if err := ValidID(s.Metric); err != nil {
			errs = append(errs, fmt.Errorf("metric: %w", err))
		}
		if s.Kind != RuleThreshold && s.Kind != RuleSpike && s.Kind != RuleStale {
			errs = append(errs, fmt.Errorf(`unknown kind %q: want "threshold", "spike" or "stale"`, s.Kind))
		}
	}
	switch {
	case !s.Until.After(now):
		errs = append(errs, errors.New("until must be in the future"))
	case s.Until.Sub(now) > MaxSilence:
		errs = append(errs, fmt.Errorf("a silence lasts at most %d days", int(MaxSilence/(24*time.Hour))))
	}
	if n := utf8.RuneCountInString(s.Reason); n > MaxSilenceReason {
		errs = append(errs, fmt.Errorf("reason is %d characters; at most %d", n, MaxSilenceReason))
	} else if !utf8.ValidString(s.Reason) || strings.ContainsFunc(s.Reason, isControl) {
		errs = append(errs, errors.New("reason must be text without control characters"))
	}
	return errors.Join(errs...)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// SilenceFilter selects silences for a list, newest first.
type SilenceFilter struct {
	SensorID string    // empty: every sensor
	InForce  time.Time // not zero: only those in force at this time
	Limit    int
}
