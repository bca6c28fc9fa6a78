package sim

import (
	"container/heap"
	"slices"
	"testing"
	"time"
)

func TestExecute(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		action      string
		params      string
		wantStatus  string
		wantMessage string
		check       func(t *testing.T, s *sensor, rescheduled bool)
	}{
		{name: "ping", action: "ping", wantStatus: "success", wantMessage: "pong"},
		{
			name: "calibrate resets drift", action: "calibrate_sensor", params: `{}`,
			wantStatus: "success", wantMessage: "calibrated",
			check: func(t *testing.T, s *sensor, _ bool) {
				for _, g := range s.gens {
					if g.drift != 0 {
						t.Fatalf("drift %v after calibration", g.drift)
					}
				}
			},
		},
		{
			name: "reboot silences for 5 s", action: "reboot",
			wantStatus: "success", wantMessage: "rebooting",
			check: func(t *testing.T, s *sensor, _ bool) {
				if _, ok := s.read(now.Add(rebootSilence-time.Millisecond), 0); ok {
					t.Fatalf("sensor read during reboot")
				}
				if _, ok := s.read(now.Add(rebootSilence), 0); !ok {
					t.Fatalf("sensor still silent after reboot")
				}
			},
		},
		{
			name: "set_interval", action: "set_interval", params: `{"seconds": 2.5}`,
			wantStatus: "success", wantMessage: "interval set to 2.5s",
			check: func(t *testing.T, s *sensor, rescheduled bool) {
				if s.interval != 2500*time.Millisecond || !s.due.Equal(now.Add(2500*time.Millisecond)) || !rescheduled {
					t.Fatalf("interval %v due %v rescheduled %v", s.interval, s.due, rescheduled)
				}
			},
		},
		{name: "set_interval without params", action: "set_interval", wantStatus: "error", wantMessage: `set_interval needs params {"seconds": N}`},
		{name: "set_interval wrong type", action: "set_interval", params: `{"seconds": "5"}`, wantStatus: "error"},
		{name: "set_interval zero", action: "set_interval", params: `{"seconds": 0}`, wantStatus: "error", wantMessage: "seconds must be between 0.001 and 3600"},
		{name: "set_interval huge", action: "set_interval", params: `{"seconds": 1e300}`, wantStatus: "error", wantMessage: "seconds must be between 0.001 and 3600"},
		{name: "unknown action", action: "x", wantStatus: "error", wantMessage: `unknown action "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSensor(1, 1, "sensors", time.Second)
			for i := range 100 {
				s.read(now.Add(time.Duration(i-100)*time.Second), 0) // accumulate some drift
			}
			rescheduled := false
			c := command{ID: "c-1", Action: tt.action}
			if tt.params != "" {
				c.Params = []byte(tt.params)
			}
			got := execute(s, c, now, func(*sensor) { rescheduled = true })
			if got.ID != "c-1" || got.Status != tt.wantStatus || (tt.wantMessage != "" && got.Message != tt.wantMessage) {
				t.Fatalf("got %+v, want status %q message %q", got, tt.wantStatus, tt.wantMessage)
			}
			if tt.check != nil {
				tt.check(t, s, rescheduled)
			}
		})
	}
}

func TestRescheduleKeepsHeapOrder(t *testing.T) {
	var h schedule
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for num := 1; num <= 5; num++ {
		s := newSensor(num, 1, "sensors", time.Second)
		s.due = start.Add(time.Duration(num) * time.Second)
		heap.Push(&h, s)
	}
	first := h[0]
	execute(first, command{ID: "c", Action: "set_interval", Params: []byte(`{"seconds": 60}`)}, start, func(s *sensor) { heap.Fix(&h, s.heapIndex) })
	if h[0].num != 2 {
		t.Fatalf("after slowing s-1 the next due is s-%d, want s-2", h[0].num)
	}
	var order []int
	for h.Len() > 0 {
		order = append(order, heap.Pop(&h).(*sensor).num)
	}
	if want := []int{2, 3, 4, 5, 1}; !slices.Equal(order, want) {
		t.Fatalf("pop order %v, want %v", order, want)
	}
}

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		wantErr bool
	}{
		{"full", `{"id":"c1","action":"calibrate_sensor","params":{},"issued_by":"alice","ts":"2025-06-01T12:00:00Z"}`, false},
		{"minimal", `{"id":"c1","action":"ping"}`, false},
		{"not json", `calibrate`, true},
		{"array", `[]`, true},
		{"missing id", `{"action":"ping"}`, true},
		{"missing action", `{"id":"c1"}`, true},
		{"id not a string", `{"id":5,"action":"ping"}`, true},
		{"empty", ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCommand([]byte(tt.payload))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestSensorFromTopic(t *testing.T) {
	tests := []struct {
		topic string
		id    string
		ok    bool
	}{
		{"devices/s-1/commands", "s-1", true},
		{"devices/s-999/commands", "s-999", true},
		{"devices//commands", "", false},
		{"devices/a/b/commands", "", false},
		{"devices/s-1/responses", "", false},
		{"sensors/s-1/commands", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			id, ok := sensorFromTopic(tt.topic)
			if id != tt.id || ok != tt.ok {
				t.Fatalf("got (%q, %v), want (%q, %v)", id, ok, tt.id, tt.ok)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c1","action":"calibrate_sensor","params":{},"issued_by":"alice","ts":"2025-06-01T12:00:00Z"}`,
		`{"id":"c2","action":"set_interval","params":{"seconds":5}}`,
		`{"id":"c3","action":"set_interval","params":{"seconds":-1e308}}`,
		`{"id":"","action":""}`,
		`{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := decodeCommand(payload)
		if err != nil {
			return
		}
		if c.ID == "" || c.Action == "" {
			t.Fatalf("accepted command without id or action: %+v", c)
		}
		// Whatever the params, executing must not panic and must answer.
		s := newSensor(1, 1, "sensors", time.Second)
		r := execute(s, c, time.Now(), func(*sensor) {})
		if r.ID != c.ID || (r.Status != "success" && r.Status != "error") {
			t.Fatalf("bad response %+v", r)
		}
	})
}
