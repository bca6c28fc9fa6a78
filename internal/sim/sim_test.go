package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/mqtttest"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startSim runs a simulator until the test ends and waits until it has
// subscribed to commands.
func startSim(t *testing.T, cfg Config) *Simulator {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
	})
	select {
	case <-s.subscribed:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("simulator did not subscribe to commands within 5s")
	}
	return s
}

type message struct {
	topic   string
	payload []byte
}

// subscribe connects a plain client subscribed to filter; messages arrive
// on the returned channel (dropped if the test does not keep up, which the
// bounded reads below never rely on).
func subscribe(t *testing.T, url, filter string) <-chan message {
	t.Helper()
	ch := make(chan message, 4096)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("test-sub-" + fmt.Sprint(time.Now().UnixNano())).
		SetCleanSession(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect subscriber: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		select {
		case ch <- message{m.Topic(), bytes.Clone(m.Payload())}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

func publisherClient(t *testing.T, url string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("test-pub-" + fmt.Sprint(time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect publisher: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestReadingsOnTheWire(t *testing.T) {
	b := mqtttest.Start(t)
	readings := subscribe(t, b.URL(), "sensors/#")
	reg := prometheus.NewPedanticRegistry()
	s := startSim(t, Config{BrokerURL: b.URL(), Sensors: 5, Rate: 20, Seed: 42, Registerer: reg})

	units := map[string]string{"temperature": "°C", "humidity": "%", "pressure": "hPa", "vibration": "mm/s"}
	wantMetrics := map[string][]string{
		"s-1": {"temperature"}, "s-2": {"humidity"}, "s-3": {"pressure"}, "s-4": {"vibration"},
		"s-5": {"temperature", "humidity"},
	}
	last := map[string]time.Time{} // sensor/metric → last ts
	perSensor := map[string]int{}
	checkValue := func(key string, v float64, ts time.Time) {
		if math.Abs(v*100-math.Round(v*100)) > 1e-6 {
			t.Errorf("%s: value %v not rounded to 2 decimals", key, v)
		}
		if !ts.After(last[key]) {
			t.Errorf("%s: ts %v not after previous %v", key, ts, last[key])
		}
		last[key] = ts
	}
	parseTS := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !strings.HasSuffix(s, "Z") {
			t.Fatalf("ts %q is not RFC 3339 in UTC: %v", s, err)
		}
		if d := time.Since(ts); d < -time.Second || d > 10*time.Second {
			t.Fatalf("ts %v is %v away from now", ts, d)
		}
		return ts
	}

	deadline := time.After(10 * time.Second)
	complete := func() bool {
		for id := range wantMetrics {
			if perSensor[id] < 5 {
				return false
			}
		}
		return true
	}
	for n := 0; n < 500 && !complete(); n++ {
		var m message
		select {
		case m = <-readings:
		case <-deadline:
			t.Fatalf("after 10s got messages per sensor %v, want at least 5 from each of s-1..s-5", perSensor)
		}
		parts := strings.Split(m.topic, "/")
		dec := json.NewDecoder(bytes.NewReader(m.payload))
		dec.DisallowUnknownFields()
		switch {
		case len(parts) == 3: // sensors/{id}/{metric}
			id, metric := parts[1], parts[2]
			if want := wantMetrics[id]; len(want) != 1 || want[0] != metric {
				t.Fatalf("unexpected topic %s", m.topic)
			}
			var p struct {
				Value *float64 `json:"value"`
				Unit  string   `json:"unit"`
				TS    string   `json:"ts"`
			}
			if err := dec.Decode(&p); err != nil || p.Value == nil {
				t.Fatalf("%s: payload %s: %v", m.topic, m.payload, err)
			}
			if p.Unit != units[metric] {
				t.Fatalf("%s: unit %q, want %q", m.topic, p.Unit, units[metric])
			}
			checkValue(id+"/"+metric, *p.Value, parseTS(p.TS))
			perSensor[id]++
		case len(parts) == 2: // sensors/{id}, combined form
			id := parts[1]
			if len(wantMetrics[id]) != 2 {
				t.Fatalf("unexpected combined topic %s", m.topic)
			}
			var p struct {
				TS     string             `json:"ts"`
				Values map[string]float64 `json:"values"`
				Units  map[string]string  `json:"units"`
			}
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("%s: payload %s: %v", m.topic, m.payload, err)
			}
			ts := parseTS(p.TS)
			if len(p.Values) != 2 || len(p.Units) != 2 {
				t.Fatalf("%s: payload %s, want two metrics", m.topic, m.payload)
			}
			for _, metric := range wantMetrics[id] {
				v, ok := p.Values[metric]
				if !ok || p.Units[metric] != units[metric] {
					t.Fatalf("%s: payload %s lacks %s in %s", m.topic, m.payload, metric, units[metric])
				}
				checkValue(id+"/"+metric, v, ts)
			}
			perSensor[id]++
		default:
			t.Fatalf("unexpected topic %s", m.topic)
		}
	}
	if !complete() {
		t.Fatalf("messages per sensor %v, want at least 5 from each of s-1..s-5", perSensor)
	}
	if s.Published() == 0 {
		t.Fatalf("Published() = 0 after readings arrived")
	}
	if got := testutil.ToFloat64(s.metrics.published); got == 0 {
		t.Fatalf("published counter = 0")
	}
}

type answer struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// awaitAnswer waits for the response with the given command id.
func awaitAnswer(t *testing.T, responses <-chan message, id string, timeout time.Duration) (answer, string, bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-responses:
			var a answer
			if err := json.Unmarshal(m.payload, &a); err != nil {
				t.Fatalf("response on %s is not JSON: %s", m.topic, m.payload)
			}
			if a.ID == id {
				return a, m.topic, true
			}
		case <-deadline:
			return answer{}, "", false
		}
	}
}

func TestCommands(t *testing.T) {
	b := mqtttest.Start(t)
	responses := subscribe(t, b.URL(), "devices/+/responses")
	const delay = 100 * time.Millisecond
	startSim(t, Config{BrokerURL: b.URL(), Sensors: 3, Rate: 1, CommandDelay: delay})
	pub := publisherClient(t, b.URL())

	tests := []struct {
		sensor, action, params string
		wantStatus, wantMsg    string
	}{
		{"s-1", "calibrate_sensor", `{}`, "success", "calibrated"},
		{"s-2", "ping", `{}`, "success", "pong"},
		{"s-3", "set_interval", `{"seconds": 2}`, "success", "interval set to 2s"},
		{"s-1", "reboot", `{}`, "success", "rebooting"},
		{"s-1", "x", `{}`, "error", `unknown action "x"`},
	}
	for i, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			id := fmt.Sprintf("cmd-%d", i)
			payload := fmt.Sprintf(`{"id":%q,"action":%q,"params":%s,"issued_by":"alice","ts":%q}`,
				id, tt.action, tt.params, time.Now().UTC().Format(time.RFC3339Nano))
			sent := time.Now()
			if tok := pub.Publish("devices/"+tt.sensor+"/commands", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish command: %v", tok.Error())
			}
			a, topic, ok := awaitAnswer(t, responses, id, 5*time.Second)
			if !ok {
				t.Fatalf("no response to %s within 5s", id)
			}
			if elapsed := time.Since(sent); elapsed < delay {
				t.Errorf("answered after %v, before the command delay %v", elapsed, delay)
			}
			if want := "devices/" + tt.sensor + "/responses"; topic != want {
				t.Errorf("response on %s, want %s", topic, want)
			}
			if a.Status != tt.wantStatus || a.Message != tt.wantMsg {
				t.Errorf("got %+v, want status %q message %q", a, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func TestCommandsWithoutAnswer(t *testing.T) {
	b := mqtttest.Start(t)
	responses := subscribe(t, b.URL(), "devices/+/responses")
	startSim(t, Config{BrokerURL: b.URL(), Sensors: 3, Rate: 1, CommandDelay: 10 * time.Millisecond})
	pub := publisherClient(t, b.URL())
	send := func(topic, payload string) {
		t.Helper()
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}

	send("devices/s-999/commands", `{"id":"ghost","action":"ping","params":{}}`)
	send("devices/s-1/commands", `{"action":"ping"`)
	send("devices/s-1/commands", `{"action":"ping"}`)
	select {
	case m := <-responses:
		t.Fatalf("unexpected response on %s: %s", m.topic, m.payload)
	case <-time.After(time.Second):
	}

	// The device is still alive after the malformed commands.
	send("devices/s-1/commands", `{"id":"alive","action":"ping"}`)
	if _, _, ok := awaitAnswer(t, responses, "alive", 5*time.Second); !ok {
		t.Fatalf("no answer to a ping after malformed commands")
	}
}

func TestRunFailsWhenBrokerUnreachable(t *testing.T) {
	port := mqtttest.FreePort(t)
	s, err := New(Config{BrokerURL: fmt.Sprintf("tcp://127.0.0.1:%d", port)}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Run(ctx); err == nil {
		t.Fatalf("Run succeeded without a broker")
	}
}

func TestNewChecksConfig(t *testing.T) {
	good := Config{BrokerURL: "tcp://127.0.0.1:1"}
	s, err := New(good, nil)
	if err != nil {
		t.Fatalf("New(%+v): %v", good, err)
	}
	c := s.cfg
	if c.Sensors != DefaultSensors || c.Rate != DefaultRate || c.Prefix != DefaultPrefix || c.QoS != DefaultQoS ||
		c.CommandDelay != DefaultCommandDelay || c.Seed == 0 || !strings.HasPrefix(c.ClientID, "watchroom-sim-") {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if len(s.byID) != DefaultSensors || s.byID["s-10"] == nil {
		t.Fatalf("sensors %d, want s-1..s-%d", len(s.byID), DefaultSensors)
	}

	bad := []struct {
		name string
		cfg  Config
	}{
		{"no broker", Config{}},
		{"broker not a URL", Config{BrokerURL: "127.0.0.1:1883"}},
		{"negative sensors", Config{BrokerURL: good.BrokerURL, Sensors: -1}},
		{"too many sensors", Config{BrokerURL: good.BrokerURL, Sensors: MaxSensors + 1}},
		{"negative rate", Config{BrokerURL: good.BrokerURL, Rate: -1}},
		{"rate too high", Config{BrokerURL: good.BrokerURL, Rate: MaxRate * 2}},
		{"NaN rate", Config{BrokerURL: good.BrokerURL, Rate: math.NaN()}},
		{"anomalies above 1", Config{BrokerURL: good.BrokerURL, Anomalies: 1.5}},
		{"wildcard prefix", Config{BrokerURL: good.BrokerURL, Prefix: "sensors/#"}},
		{"two-level prefix", Config{BrokerURL: good.BrokerURL, Prefix: "site/sensors"}},
		{"QoS 3", Config{BrokerURL: good.BrokerURL, QoS: 3}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil); err == nil {
				t.Fatalf("New(%+v) succeeded", tt.cfg)
			}
		})
	}
}
