package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/mqtttest"
)

var errFakeNotFound = fmt.Errorf("fake store: %w", model.ErrNotFound)

// fakeStore is an in-memory CommandStore with the store's semantics:
// FinishCommand moves pending commands only.
type fakeStore struct {
	mu          sync.Mutex
	cmds        map[string]model.Command
	finishErrs  int // FinishCommand calls still to fail with a transient error
	pendingErrs int // PendingCommands calls still to fail with a transient error
}

var _ CommandStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore { return &fakeStore{cmds: make(map[string]model.Command)} }

func (s *fakeStore) InsertCommand(_ context.Context, c model.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cmds[c.ID]; ok {
		return fmt.Errorf("fake store: duplicate command %s", c.ID)
	}
	s.cmds[c.ID] = c
	return nil
}

func (s *fakeStore) FinishCommand(_ context.Context, id, status, message string, at time.Time) (model.Command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finishErrs > 0 {
		s.finishErrs--
		return model.Command{}, errors.New("fake store: connection refused")
	}
	c, ok := s.cmds[id]
	if !ok || c.Status != model.CommandPending {
		return model.Command{}, fmt.Errorf("fake store: finish command: %w", errFakeNotFound)
	}
	at = at.UTC()
	lat := float64(at.Sub(c.IssuedAt)) / float64(time.Millisecond)
	c.Status, c.Message, c.RespondedAt, c.LatencyMS = status, message, &at, &lat
	s.cmds[id] = c
	return c, nil
}

func (s *fakeStore) TimeoutCommands(_ context.Context, before time.Time, message string, at time.Time) ([]model.Command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []model.Command
	for id, c := range s.cmds {
		if c.Status == model.CommandPending && c.IssuedAt.Before(before) {
			c.Status, c.Message = model.CommandTimeout, message
			s.cmds[id] = c
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *fakeStore) Command(_ context.Context, id string) (model.Command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cmds[id]
	if !ok {
		return model.Command{}, fmt.Errorf("fake store: command: %w", errFakeNotFound)
	}
	return c, nil
}

func (s *fakeStore) PendingCommands(context.Context) ([]model.Command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pendingErrs > 0 {
		s.pendingErrs--
		return nil, errors.New("fake store: connection refused")
	}
	var out []model.Command
	for _, c := range s.cmds {
		if c.Status == model.CommandPending {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b model.Command) int { return a.IssuedAt.Compare(b.IssuedAt) })
	return out, nil
}

func (s *fakeStore) get(t *testing.T, id string) model.Command {
	t.Helper()
	c, err := s.Command(context.Background(), id)
	if err != nil {
		t.Fatalf("command %s not stored: %v", id, err)
	}
	return c
}

// notification is one recorded SendReliable call.
type notification struct {
	user, typ string
	ref       json.RawMessage
	data      Response
}

// fakeNotifier records SendReliable calls.
type fakeNotifier struct {
	mu    sync.Mutex
	calls []notification
}

var _ Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) SendReliable(_ context.Context, user, typ string, ref json.RawMessage, data any) error {
	r, ok := data.(Response)
	if !ok {
		return fmt.Errorf("fake notifier: data is %T, want devices.Response", data)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, notification{user: user, typ: typ, ref: ref, data: r})
	return nil
}

func (n *fakeNotifier) snapshot() []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.calls)
}

// wait returns the calls once there are at least count of them.
func (n *fakeNotifier) wait(t *testing.T, count int) []notification {
	t.Helper()
	eventually(t, 5*time.Second, func() bool { return len(n.snapshot()) >= count },
		"%d notification(s)", count)
	return n.snapshot()
}

// eventually polls cond every 10ms for at most within.
func eventually(t *testing.T, within time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, fmt.Sprintf(what, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// harness is one running *Devices with its fakes.
type harness struct {
	d    *Devices
	st   *fakeStore
	n    *fakeNotifier
	stop func() // cancels Run and waits for it; idempotent
}

func newDevices(t *testing.T, url, clientID string, timeout time.Duration, st *fakeStore, n *fakeNotifier) *Devices {
	t.Helper()
	d, err := New(Config{BrokerURL: url, ClientID: clientID, Timeout: timeout},
		st, n, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	d.now = (&risingClock{}).now
	return d
}

// risingClock is the real clock, but each reading is later than the one
// before, so a latency measured between two readings is never 0 on a
// machine whose clock has a coarse resolution.
type risingClock struct {
	mu   sync.Mutex
	last time.Time
}

func (c *risingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now()
	if !t.After(c.last) {
		t = c.last.Add(time.Microsecond)
	}
	c.last = t
	return t
}

// run starts d.Run and waits until it is connected and subscribed (unless
// the broker is down on purpose: wait=false).
func run(t *testing.T, d *Devices, st *fakeStore, n *fakeNotifier, wait bool) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
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
	}
	t.Cleanup(stop)
	if wait {
		eventually(t, 5*time.Second, d.Connected, "devices to connect and subscribe")
	}
	return &harness{d: d, st: st, n: n, stop: stop}
}

// start is newDevices + run with fresh fakes.
func start(t *testing.T, b *mqtttest.Broker, timeout time.Duration) *harness {
	t.Helper()
	st, n := newFakeStore(), &fakeNotifier{}
	return run(t, newDevices(t, b.URL(), "wr-devices", timeout, st, n), st, n, true)
}

// received is one command as a device saw it.
type received struct {
	topic string
	cmd   wireCommand
}

// device is a fake device side: it records the commands published to any
// sensor and answers only when the test tells it to.
type device struct {
	t      *testing.T
	client mqtt.Client
	got    chan received
}

func startDevice(t *testing.T, b *mqtttest.Broker) *device {
	t.Helper()
	dev := &device{t: t, got: make(chan received, 16)}
	opts := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("fake-device").SetCleanSession(true)
	dev.client = mqtt.NewClient(opts)
	if tok := dev.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	t.Cleanup(func() { dev.client.Disconnect(100) })
	tok := dev.client.Subscribe("devices/+/commands", 1, func(_ mqtt.Client, m mqtt.Message) {
		var c wireCommand
		if err := json.Unmarshal(m.Payload(), &c); err != nil {
			t.Errorf("device: bad command payload %q: %v", m.Payload(), err)
			return
		}
		select {
		case dev.got <- received{topic: m.Topic(), cmd: c}:
		default:
			t.Errorf("device: command queue full")
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device subscribe: %v", tok.Error())
	}
	return dev
}

// next returns the next command the device received.
func (dev *device) next() received {
	dev.t.Helper()
	select {
	case r := <-dev.got:
		return r
	case <-time.After(5 * time.Second):
		dev.t.Fatalf("device received no command within 5s")
		return received{}
	}
}

// respond publishes payload on topic at QoS 1 and waits for the PUBACK.
func (dev *device) respond(topic, payload string) {
	dev.t.Helper()
	publish(dev.t, dev.client, topic, payload)
}

func publish(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func responseJSON(id, status, message string) string {
	b, _ := json.Marshal(map[string]string{"id": id, "status": status, "message": message})
	return string(b)
}

// refIsNull reports whether ref encodes JSON null (nil counts).
func refIsNull(ref json.RawMessage) bool {
	return len(ref) == 0 || strings.TrimSpace(string(ref)) == "null"
}
