package model

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAlertJSON(t *testing.T) {
	opened := time.Date(2026, 11, 21, 10, 0, 0, 120_000_000, time.FixedZone("CET", 3600))
	bob := "bob"
	for _, tc := range []struct {
		name string
		a    Alert
		want string
	}{
		{"open", Alert{ID: 7, SensorID: "s-1", Metric: "temperature", Kind: AlertThreshold, Severity: SeverityWarning,
			Value: 31.5, LimitOrScore: 30, State: AlertOpen, OpenedAt: opened, UpdatedAt: opened, Count: 1, EventID: 41, Note: "hidden"},
			`{"id":7,"sensor_id":"s-1","metric":"temperature","kind":"threshold","severity":"warning","value":31.5,` +
				`"limit_or_score":30,"state":"open","opened_at":"2026-11-21T09:00:00.120Z","updated_at":"2026-11-21T09:00:00.120Z",` +
				`"count":1,"acked_by":null,"resolved_by":null,"resolved_at":null,"event_id":41}`},
		{"resolved", Alert{ID: 8, Kind: AlertOffline, State: AlertResolved, OpenedAt: opened, UpdatedAt: opened.Add(time.Second),
			Count: 1, AckedBy: &bob, ResolvedBy: &bob, ResolvedAt: &opened},
			`"acked_by":"bob","resolved_by":"bob","resolved_at":"2026-11-21T09:00:00.120Z","event_id":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(b), tc.want) || strings.Contains(string(b), "hidden") {
				t.Errorf("JSON = %s\nwant (suffix) %s", b, tc.want)
			}
			var back Alert
			if err := json.Unmarshal(b, &back); err != nil || back.ID != tc.a.ID || back.EventID != tc.a.EventID || !back.OpenedAt.Equal(tc.a.OpenedAt) {
				t.Errorf("round trip = %+v, %v", back, err)
			}
		})
	}
}

func TestValidateAlertRules(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	for _, tc := range []struct {
		name  string
		rules []AlertRule
		want  string // "" for valid
	}{
		{"empty", nil, ""},
		{"threshold both", []AlertRule{{Metric: "t", Kind: RuleThreshold, Enabled: true, Min: f(-1), Max: f(1)}}, ""},
		{"threshold disabled without limits", []AlertRule{{Metric: "t", Kind: RuleThreshold}}, ""},
		{"spike defaults", []AlertRule{{Metric: "t", Kind: RuleSpike, Enabled: true}}, ""},
		{"stale", []AlertRule{{Metric: "t", Kind: RuleStale, Enabled: true, AfterSeconds: f(90)}}, ""},
		{"min = max", []AlertRule{{Metric: "t", Kind: RuleThreshold, Enabled: true, Min: f(1), Max: f(1)}}, "min (1) must be less than max (1)"},
		{"k too big", []AlertRule{{Metric: "t", Kind: RuleSpike, K: f(1001)}}, "k must be"},
		{"warmup", []AlertRule{{Metric: "t", Kind: RuleSpike, Warmup: i(29)}}, "warmup must be"},
		{"stale too long", []AlertRule{{Metric: "t", Kind: RuleStale, AfterSeconds: f(8 * 24 * 3600)}}, "after_seconds must be"},
		{"too many", make([]AlertRule, MaxRulesPerSensor+1), "at most 100 rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAlertRules(tc.rules)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestWireTimes: every time on the wire is RFC 3339 in UTC, readings'
// own times with microseconds, the others with milliseconds.
func TestWireTimes(t *testing.T) {
	at := time.Date(2026, 11, 21, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		v    any
		want []string
	}{
		{"sensor", Sensor{ID: "s-1", Metric: "t", FirstSeen: at, LastSeen: at},
			[]string{`"first_seen":"2026-11-21T10:00:00.123456Z"`, `"last_seen":"2026-11-21T10:00:00.123456Z"`, `"sensor_id":"s-1"`}},
		{"bucket", Bucket{TS: at, Count: 3}, []string{`"ts":"2026-11-21T10:00:00.123456Z"`, `"count":3`}},
		{"reading", Reading{SensorID: "s-1", TS: at}, []string{`"ts":"2026-11-21T10:00:00.123456Z"`}},
		{"command", Command{ID: "c1", IssuedAt: at, RespondedAt: &at},
			[]string{`"issued_at":"2026-11-21T10:00:00.123Z"`, `"responded_at":"2026-11-21T10:00:00.123Z"`, `"command_id":"c1"`}},
		{"pending command", Command{ID: "c2", IssuedAt: at}, []string{`"issued_at":"2026-11-21T10:00:00.123Z"`}},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: %s lacks %s", tc.name, b, w)
			}
		}
		if strings.Count(string(b), `_at"`)+strings.Count(string(b), `"ts"`)+strings.Count(string(b), `_seen"`) != strings.Count(string(b), `Z"`) {
			t.Errorf("%s: %s has a time twice or in another form", tc.name, b)
		}
	}
}
