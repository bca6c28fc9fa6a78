package devices

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, status, message string
	}{
		{"success", model.CommandSuccess, "calibrated"},
		{"error", model.CommandError, "sensor busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqtttest.Start(t)
			h := start(t, b, 5*time.Second)
			dev := startDevice(t, b)

			cmd, err := h.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "calibrate_sensor", json.RawMessage(` { "gain" : 2 } `))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if cmd.Status != model.CommandPending || cmd.IssuedBy != "alice" || len(cmd.ID) != 32 {
				t.Fatalf("Send returned %+v, want a pending command by alice with a 32-char id", cmd)
			}
			if got := h.st.get(t, cmd.ID); got.Status != model.CommandPending || string(got.Params) != `{"gain":2}` {
				t.Fatalf("stored %+v, want pending with compact params", got)
			}

			r := dev.next()
			if r.topic != "devices/s-5/commands" {
				t.Errorf("command topic = %q", r.topic)
			}
			if r.cmd.ID != cmd.ID || r.cmd.Action != "calibrate_sensor" || r.cmd.IssuedBy != "alice" || string(r.cmd.Params) != `{"gain":2}` {
				t.Errorf("device got %+v, want the command %s", r.cmd, cmd.ID)
			}
			if ts, err := time.Parse(time.RFC3339Nano, r.cmd.TS); err != nil || !ts.Equal(cmd.IssuedAt) || !strings.HasSuffix(r.cmd.TS, "Z") {
				t.Errorf("ts = %q (%v), want %s in UTC", r.cmd.TS, err, cmd.IssuedAt.Format(time.RFC3339Nano))
			}

			dev.respond("devices/s-5/responses", responseJSON(cmd.ID, tc.status, tc.message))
			calls := h.n.wait(t, 1)
			got := calls[0]
			if got.user != "alice" || got.typ != "command_response" || string(got.ref) != `"c1"` {
				t.Errorf("notified user=%q type=%q ref=%s, want alice command_response \"c1\"", got.user, got.typ, got.ref)
			}
			want := Response{CommandID: cmd.ID, SensorID: "s-5", Action: "calibrate_sensor", Status: tc.status, Message: tc.message}
			if got.data.LatencyMS <= 0 {
				t.Errorf("latency_ms = %v, want > 0", got.data.LatencyMS)
			}
			got.data.LatencyMS = 0
			if got.data != want {
				t.Errorf("data = %+v, want %+v", got.data, want)
			}
			if c := h.st.get(t, cmd.ID); c.Status != tc.status || c.Message != tc.message || c.RespondedAt == nil {
				t.Errorf("stored %+v, want finished as %s", c, tc.status)
			}
			if v := testutil.ToFloat64(h.d.m.commands.WithLabelValues(tc.status)); v != 1 {
				t.Errorf("watchroom_commands_total{outcome=%q} = %v, want 1", tc.status, v)
			}
			if v := testutil.ToFloat64(h.d.m.pending); v != 0 {
				t.Errorf("watchroom_commands_pending = %v, want 0", v)
			}
			if n := testutil.CollectAndCount(h.d.m.latency); n != 1 {
				t.Errorf("latency histogram series = %d, want 1", n)
			}
		})
	}
}

func TestTimeoutThenLateResponseIgnored(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 300*time.Millisecond)
	dev := startDevice(t, b)

	cmd, err := h.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	dev.next() // the device stays silent until the timeout
	got := h.n.wait(t, 1)[0]
	if got.user != "alice" || string(got.ref) != `"c1"` || got.data.Status != model.CommandTimeout ||
		got.data.Message != "no response from device within 300ms" || got.data.CommandID != cmd.ID {
		t.Fatalf("notification = %+v, want a timeout of %s for alice", got, cmd.ID)
	}
	if got.data.LatencyMS < 300 {
		t.Errorf("timeout latency_ms = %v, want >= 300", got.data.LatencyMS)
	}
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandTimeout {
		t.Fatalf("stored status = %q, want timeout", c.Status)
	}

	dev.respond("devices/s-5/responses", responseJSON(cmd.ID, model.CommandSuccess, "done, late"))
	eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(h.d.m.rejected.WithLabelValues(reasonNotPending)) == 1
	}, "the late response to be rejected as not_pending")
	if n := len(h.n.snapshot()); n != 1 {
		t.Errorf("%d notifications, want exactly 1", n)
	}
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandTimeout {
		t.Errorf("stored status = %q after the late response, want timeout", c.Status)
	}
	if v := testutil.ToFloat64(h.d.m.commands.WithLabelValues(outcomeTimeout)); v != 1 {
		t.Errorf("watchroom_commands_total{outcome=timeout} = %v, want 1", v)
	}
}

func TestWrongDeviceTopicRejected(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 5*time.Second)
	dev := startDevice(t, b)

	cmd, err := h.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	dev.next()
	dev.respond("devices/s-6/responses", responseJSON(cmd.ID, model.CommandSuccess, "not mine"))
	eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(h.d.m.rejected.WithLabelValues(reasonWrongDevice)) == 1
	}, "the response on s-6's topic to be rejected as wrong_device")
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandPending {
		t.Fatalf("stored status = %q after a wrong-device response, want pending", c.Status)
	}

	dev.respond("devices/s-5/responses", responseJSON(cmd.ID, model.CommandSuccess, "mine"))
	calls := h.n.wait(t, 1)
	if len(calls) != 1 || calls[0].data.Status != model.CommandSuccess || calls[0].data.Message != "mine" {
		t.Fatalf("notifications = %+v, want one success from s-5", calls)
	}
}

func TestBadResponsesRejected(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 5*time.Second)
	dev := startDevice(t, b)
	cmd, err := h.d.Send(context.Background(), "alice", nil, "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	dev.next()

	for _, tc := range []struct {
		name, topic, payload, reason string
	}{
		{"not json", "devices/s-5/responses", "ok", reasonMalformed},
		{"id missing", "devices/s-5/responses", `{"status":"success"}`, reasonMalformed},
		{"id not a string", "devices/s-5/responses", `{"id":5,"status":"success"}`, reasonMalformed},
		{"bad status", "devices/s-5/responses", responseJSON(cmd.ID, "done", ""), reasonBadStatus},
		{"unknown id", "devices/s-5/responses", responseJSON(newCommandID(), model.CommandSuccess, ""), reasonUnknownCommand},
		{"bad sensor in topic", "devices/s 5/responses", responseJSON(cmd.ID, model.CommandSuccess, ""), reasonBadTopic},
		{"too large", "devices/s-5/responses", `{"id":"` + cmd.ID + `","status":"success","message":"` + strings.Repeat("x", 20<<10) + `"}`, reasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(h.d.m.rejected.WithLabelValues(tc.reason))
			dev.respond(tc.topic, tc.payload)
			eventually(t, 5*time.Second, func() bool {
				return testutil.ToFloat64(h.d.m.rejected.WithLabelValues(tc.reason)) == before+1
			}, "rejection with reason %s", tc.reason)
		})
	}
	if n := len(h.n.snapshot()); n != 0 {
		t.Errorf("%d notifications after bad responses, want 0", n)
	}
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandPending {
		t.Errorf("stored status = %q, want pending", c.Status)
	}
}

func TestLongMessageTruncated(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 5*time.Second)
	dev := startDevice(t, b)
	cmd, err := h.d.Send(context.Background(), "alice", nil, "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	dev.next()
	dev.respond("devices/s-5/responses", responseJSON(cmd.ID, model.CommandError, strings.Repeat("é", 600)))
	got := h.n.wait(t, 1)[0]
	if len(got.data.Message) != 1024 || h.st.get(t, cmd.ID).Message != got.data.Message {
		t.Errorf("message of %d bytes (stored %d), want 1024 in both", len(got.data.Message), len(h.st.get(t, cmd.ID).Message))
	}
}

func TestPublishFailureNotifiesError(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 5*time.Second)
	b.Stop()
	eventually(t, 5*time.Second, func() bool { return !h.d.Connected() }, "devices to notice the broker is gone")

	cmd, err := h.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if cmd.Status != model.CommandError || !strings.HasPrefix(cmd.Message, "broker unavailable: ") {
		t.Errorf("Send returned status %q message %q, want error \"broker unavailable: ...\"", cmd.Status, cmd.Message)
	}
	calls := h.n.wait(t, 1)
	if got := calls[0]; got.data.Status != model.CommandError || string(got.ref) != `"c1"` || !strings.HasPrefix(got.data.Message, "broker unavailable: ") {
		t.Errorf("notification = %+v, want a broker-unavailable error for c1", got)
	}
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandError {
		t.Errorf("stored status = %q, want error", c.Status)
	}
	if v := testutil.ToFloat64(h.d.m.commands.WithLabelValues(outcomePublishFailed)); v != 1 {
		t.Errorf("watchroom_commands_total{outcome=publish_failed} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(h.d.m.pending); v != 0 {
		t.Errorf("watchroom_commands_pending = %v, want 0", v)
	}
}

// A response published while the process is down is queued by the broker
// for its persistent session and completes the reloaded command on start.
func TestRestartDeliversQueuedResponse(t *testing.T) {
	b := mqtttest.Start(t)
	st, n := newFakeStore(), &fakeNotifier{}
	h1 := run(t, newDevices(t, b.URL(), "wr-devices", 3*time.Second, st, n), st, n, true)
	cmd, err := h1.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	h1.stop()

	dev := startDevice(t, b)
	dev.respond("devices/s-5/responses", responseJSON(cmd.ID, model.CommandSuccess, "done while you were away"))

	h2 := run(t, newDevices(t, b.URL(), "wr-devices", 3*time.Second, st, n), st, n, false)
	got := h2.n.wait(t, 1)[0]
	if got.user != "alice" || !refIsNull(got.ref) || got.data.Status != model.CommandSuccess || got.data.CommandID != cmd.ID {
		t.Fatalf("notification = %+v (ref %s), want success of %s for alice with ref null", got, got.ref, cmd.ID)
	}
	if c := st.get(t, cmd.ID); c.Status != model.CommandSuccess {
		t.Errorf("stored status = %q, want success", c.Status)
	}
}

func TestReloadTimesOutStaleCommands(t *testing.T) {
	b := mqtttest.Start(t)
	st, n := newFakeStore(), &fakeNotifier{}
	old := time.Now().Add(-time.Hour).UTC()
	for _, c := range []model.Command{
		{ID: "stale", SensorID: "s-9", Action: "reboot", IssuedBy: "bob", IssuedAt: old, Status: model.CommandPending},
		{ID: "done", SensorID: "s-9", Action: "reboot", IssuedBy: "bob", IssuedAt: old, Status: model.CommandSuccess},
	} {
		if err := st.InsertCommand(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	h := run(t, newDevices(t, b.URL(), "wr-devices", 300*time.Millisecond, st, n), st, n, true)
	got := h.n.wait(t, 1)[0]
	if got.user != "bob" || !refIsNull(got.ref) || got.data.CommandID != "stale" || got.data.Status != model.CommandTimeout {
		t.Fatalf("notification = %+v, want bob's stale command timed out with ref null", got)
	}
	if c := st.get(t, "done"); c.Status != model.CommandSuccess {
		t.Errorf("finished command changed to %q", c.Status)
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(h.n.snapshot()); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

// The store is down when Run starts: the pending commands are loaded once
// it answers, after waits that double from 100ms, and a stale one still
// times out.
func TestReloadRetriesWhileTheStoreFails(t *testing.T) {
	b := mqtttest.Start(t)
	st, n := newFakeStore(), &fakeNotifier{}
	c := model.Command{ID: "stale", SensorID: "s-9", Action: "reboot", IssuedBy: "bob", IssuedAt: time.Now().Add(-time.Hour).UTC(), Status: model.CommandPending}
	if err := st.InsertCommand(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	st.pendingErrs = 3
	d := newDevices(t, b.URL(), "wr-devices", 300*time.Millisecond, st, n)
	var mu sync.Mutex
	var waits []time.Duration
	fired := make(chan time.Time)
	close(fired)
	d.retry.After = func(w time.Duration) <-chan time.Time {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, w)
		return fired
	}
	h := run(t, d, st, n, true)
	got := h.n.wait(t, 1)[0]
	if got.user != "bob" || got.data.CommandID != "stale" || got.data.Status != model.CommandTimeout {
		t.Fatalf("notification = %+v, want bob's stale command timed out", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if v := testutil.ToFloat64(d.m.reloadErrs); v != 3 {
		t.Errorf("watchroom_command_reload_errors_total = %v, want 3", v)
	}
}

// Cancelled while the store is still down: Run returns without error.
func TestRunStoppedWhileReloadRetries(t *testing.T) {
	st, n := newFakeStore(), &fakeNotifier{}
	st.pendingErrs = 1 << 30
	d := newDevices(t, "tcp://127.0.0.1:1", "wr-devices", time.Second, st, n)
	retrying := make(chan struct{}, 1)
	d.retry.After = func(time.Duration) <-chan time.Time {
		select {
		case retrying <- struct{}{}:
		default:
		}
		return nil // only the context ends the wait
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-retrying
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// A command this process did not issue (another instance's) is completed
// from the stored row, and the topic must still match its sensor.
func TestResponseToCommandNotInMemory(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 5*time.Second)
	dev := startDevice(t, b)
	for _, id := range []string{"other-1", "other-2"} {
		// Issued a second ago: the latency is at least that, whatever the
		// clock's resolution.
		c := model.Command{ID: id, SensorID: "s-7", Action: "reboot", IssuedBy: "carol", IssuedAt: time.Now().Add(-time.Second).UTC(), Status: model.CommandPending}
		if err := h.st.InsertCommand(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	dev.respond("devices/s-8/responses", responseJSON("other-2", model.CommandSuccess, ""))
	dev.respond("devices/s-7/responses", responseJSON("other-1", model.CommandSuccess, "ok"))

	got := h.n.wait(t, 1)[0]
	if got.user != "carol" || !refIsNull(got.ref) || got.data.CommandID != "other-1" || got.data.Status != model.CommandSuccess || got.data.LatencyMS < 1000 {
		t.Fatalf("notification = %+v, want carol's other-1 succeeded with ref null", got)
	}
	if v := testutil.ToFloat64(h.d.m.rejected.WithLabelValues(reasonWrongDevice)); v != 1 {
		t.Errorf("wrong_device rejections = %v, want 1", v)
	}
	if c := h.st.get(t, "other-2"); c.Status != model.CommandPending {
		t.Errorf("other-2 status = %q, want pending", c.Status)
	}
}

func TestTimeoutRetriedAfterStoreError(t *testing.T) {
	b := mqtttest.Start(t)
	h := start(t, b, 200*time.Millisecond)
	h.st.mu.Lock()
	h.st.finishErrs = 1
	h.st.mu.Unlock()
	cmd, err := h.d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), "s-5", "reboot", nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := h.n.wait(t, 1)[0]
	if got.data.Status != model.CommandTimeout || got.data.CommandID != cmd.ID {
		t.Fatalf("notification = %+v, want the timeout of %s", got, cmd.ID)
	}
	if c := h.st.get(t, cmd.ID); c.Status != model.CommandTimeout {
		t.Errorf("stored status = %q, want timeout", c.Status)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.n.snapshot()); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

func TestSendBadInputStoresNothing(t *testing.T) {
	st, n := newFakeStore(), &fakeNotifier{}
	d := newDevices(t, "tcp://127.0.0.1:1", "wr-devices", time.Second, st, n)
	for _, tc := range []struct {
		name, sensor, action, params string
	}{
		{"empty sensor", "", "reboot", ""},
		{"wildcard sensor", "s/+", "reboot", ""},
		{"upper-case action", "s-5", "Reboot", ""},
		{"params array", "s-5", "reboot", `[1]`},
		{"params too large", "s-5", "reboot", `{"x":"` + strings.Repeat("a", 5000) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var params json.RawMessage
			if tc.params != "" {
				params = json.RawMessage(tc.params)
			}
			_, err := d.Send(context.Background(), "alice", json.RawMessage(`"c1"`), tc.sensor, tc.action, params)
			var re *RequestError
			if !errors.As(err, &re) || re.Code != CodeBadRequest {
				t.Fatalf("Send error = %v, want a *RequestError with code bad_request", err)
			}
		})
	}
	if got, _ := st.PendingCommands(context.Background()); len(got) != 0 {
		t.Errorf("stored %d commands, want 0", len(got))
	}
	if len(n.snapshot()) != 0 {
		t.Errorf("notified for refused input")
	}
}
