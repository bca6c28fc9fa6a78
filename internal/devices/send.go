package devices

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// CodeBadRequest is the RequestError code for invalid command input.
const CodeBadRequest = "bad_request"

const (
	maxActionLen = 64
	maxParams    = 4 << 10
)

// RequestError is a command refused because of its input; nothing was
// stored or published. Message is safe to show to the user.
type RequestError struct {
	Code    string
	Message string
}

func (e *RequestError) Error() string { return "devices: " + e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *RequestError {
	return &RequestError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// wireCommand is the payload published on <prefix>/<sensor>/commands.
type wireCommand struct {
	ID       string          `json:"id"`
	Action   string          `json:"action"`
	Params   json.RawMessage `json:"params"`
	IssuedBy string          `json:"issued_by"`
	TS       string          `json:"ts"`
}

// Send validates and issues one command on behalf of user; ref is the
// request id the eventual command_response answers. The caller checks the
// user's role.
//
// Input errors are a *RequestError. Any other error means the command could
// not be stored: nothing was published and no command_response follows.
// Otherwise the user gets exactly one command_response (success, error or
// timeout) later, also when publishing fails, and Send returns the command
// as it stands: pending, or already finished as error when the broker was
// unavailable. Safe for concurrent use; it blocks for at most about 5s
// waiting for the broker's PUBACK.
func (d *Devices) Send(ctx context.Context, user string, ref json.RawMessage, sensorID, action string, params json.RawMessage) (model.Command, error) {
	params, err := validate(sensorID, action, params)
	if err != nil {
		return model.Command{}, err
	}
	now := d.now() // keeps the monotonic reading for the latency
	c := model.Command{
		ID:       newCommandID(),
		SensorID: sensorID,
		Action:   action,
		Params:   params,
		IssuedBy: user,
		IssuedAt: now.UTC(),
		Status:   model.CommandPending,
	}
	payload, err := json.Marshal(wireCommand{ID: c.ID, Action: action, Params: params, IssuedBy: user, TS: c.IssuedAt.Format(time.RFC3339Nano)})
	if err != nil {
		return model.Command{}, fmt.Errorf("devices: encode command: %w", err)
	}
	if err := d.store.InsertCommand(ctx, c); err != nil {
		return model.Command{}, fmt.Errorf("devices: send: %w", err)
	}

	// Registered before publishing: a fast device may answer before
	// Publish returns.
	p := &pending{sensorID: sensorID, action: action, user: user, ref: ref, issued: now}
	d.mu.Lock()
	d.pending[c.ID] = p
	d.armLocked(c.ID, p, d.timeout)
	d.m.pending.Set(float64(len(d.pending)))
	d.mu.Unlock()

	// A publish made while paho is reconnecting would be queued and sent
	// after the reconnect, possibly long after we reported a failure: only
	// publish on an open connection.
	if !d.client.IsConnectionOpen() {
		return d.publishFailed(ctx, c, p, errors.New("not connected"))
	}
	tok := d.client.Publish(d.prefix+"/"+sensorID+"/commands", 1, false, payload)
	wait := time.NewTimer(min(publishWait, d.timeout))
	defer wait.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return d.publishFailed(ctx, c, p, err)
		}
	case <-wait.C:
		// Unconfirmed is not failed: paho keeps the message and resends it
		// after a reconnect, so the device may still act on it. The
		// command's timer decides the outcome.
		d.log.Warn("devices: publish not confirmed in time; leaving the outcome to the command timeout",
			"command_id", c.ID, "sensor_id", sensorID)
	case <-ctx.Done():
		// The caller gave up waiting; the timer still decides the outcome.
	}
	return c, nil
}

// publishFailed finishes c as error and notifies the user. If the store
// fails, the entry stays pending and its timer times it out later, so the
// user still gets one command_response.
func (d *Devices) publishFailed(ctx context.Context, c model.Command, p *pending, cause error) (model.Command, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	at := d.now()
	fc, err := d.store.FinishCommand(ctx, c.ID, model.CommandError, "broker unavailable: "+cause.Error(), at)
	switch {
	case d.notFound(err):
		d.forget(c.ID) // a response or the timer finished it first
		return c, nil
	case err != nil:
		d.log.Error("devices: record failed publish; the command will time out instead",
			"command_id", c.ID, "publish_err", cause, "err", err)
		return c, nil
	}
	d.forget(c.ID)
	d.m.commands.WithLabelValues(outcomePublishFailed).Inc()
	d.log.Warn("devices: publish failed", "command_id", c.ID, "sensor_id", c.SensorID, "err", cause)
	d.notify(ctx, p.user, p.ref, Response{
		CommandID: fc.ID,
		SensorID:  fc.SensorID,
		Action:    fc.Action,
		Status:    fc.Status,
		Message:   fc.Message,
		LatencyMS: latencyMS(p.issued, at),
	})
	return fc, nil
}

// validate checks one command's input and returns its params normalised
// (compact JSON, {} when absent).
func validate(sensorID, action string, params json.RawMessage) (json.RawMessage, error) {
	if err := model.ValidID(sensorID); err != nil {
		return nil, badRequest("sensor_id: %v", err)
	}
	if err := validAction(action); err != nil {
		return nil, badRequest("action: %v", err)
	}
	if len(params) > maxParams {
		return nil, badRequest("params: larger than %d bytes", maxParams)
	}
	trimmed := bytes.TrimSpace(params)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, badRequest("params: must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, badRequest("params: must be a JSON object")
	}
	return json.RawMessage(buf.Bytes()), nil
}

func validAction(s string) error {
	if len(s) == 0 || len(s) > maxActionLen {
		return fmt.Errorf("must be 1 to %d characters", maxActionLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("invalid character %q (allowed: a-z, 0-9, '_')", c)
		}
	}
	return nil
}

// newCommandID returns 128 random bits in hex: unguessable, so a device
// cannot answer for a command it was not sent.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b[:])
}
