package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/watchroom/watchroom/internal/model"
)

const (
	maxResponsePayload = 16 << 10
	maxMessage         = 1 << 10
	maxCommandIDLen    = 64
)

// response is a device's answer after validation.
type response struct {
	SensorID string // from the topic
	ID       string
	Status   string // success or error
	Message  string // at most maxMessage bytes
}

// parseResponse validates a message received on <prefix>/<sensor>/responses.
// It returns the rejection reason ("" when valid).
func parseResponse(prefix, topic string, payload []byte) (response, string) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return response{}, reasonBadTopic
	}
	sensorID, ok := strings.CutSuffix(rest, "/responses")
	if !ok || model.ValidID(sensorID) != nil {
		return response{}, reasonBadTopic
	}
	if len(payload) > maxResponsePayload {
		return response{}, reasonTooLarge
	}
	var w struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(payload, &w); err != nil || w.ID == "" || len(w.ID) > maxCommandIDLen {
		return response{}, reasonMalformed
	}
	if w.Status != model.CommandSuccess && w.Status != model.CommandError {
		return response{}, reasonBadStatus
	}
	return response{SensorID: sensorID, ID: w.ID, Status: w.Status, Message: truncate(w.Message, maxMessage)}, ""
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// handleResponse runs on the worker goroutine. The message is acked when
// this returns, whatever the outcome: a response that cannot be used now
// will not become usable by being delivered again.
func (d *Devices) handleResponse(ctx context.Context, in inbound) {
	defer in.msg.Ack()
	r, reason := parseResponse(d.prefix, in.msg.Topic(), in.msg.Payload())
	if reason != "" {
		d.reject(reason, in.msg.Topic(), "")
		return
	}

	p, known := d.lookup(r.ID)
	if known && p.sensorID != r.SensorID {
		d.reject(reasonWrongDevice, in.msg.Topic(), r.ID)
		return
	}
	if !known {
		// Issued by another instance, or already finished. The ref is not
		// stored, so the user gets the outcome with ref null.
		c, err := d.store.Command(ctx, r.ID)
		switch {
		case d.notFound(err):
			d.reject(reasonUnknownCommand, in.msg.Topic(), r.ID)
			return
		case err != nil:
			d.rejectStoreError(in.msg.Topic(), r.ID, err)
			return
		}
		if c.SensorID != r.SensorID {
			d.reject(reasonWrongDevice, in.msg.Topic(), r.ID)
			return
		}
		if c.Status != model.CommandPending {
			d.reject(reasonNotPending, in.msg.Topic(), r.ID)
			return
		}
		p = &pending{sensorID: c.SensorID, action: c.Action, user: c.IssuedBy, issued: c.IssuedAt}
	}

	c, err := d.store.FinishCommand(ctx, r.ID, r.Status, r.Message, in.at)
	switch {
	case d.notFound(err):
		d.forget(r.ID) // timed out, or finished by another instance
		d.reject(reasonNotPending, in.msg.Topic(), r.ID)
		return
	case err != nil:
		// The entry stays pending with its timer running: the command
		// times out (and is stored as such) unless the store recovers.
		d.rejectStoreError(in.msg.Topic(), r.ID, err)
		return
	}
	d.forget(r.ID)
	latency := in.at.Sub(p.issued)
	d.m.commands.WithLabelValues(r.Status).Inc()
	d.m.latency.Observe(latency.Seconds())
	d.notify(ctx, p.user, p.ref, Response{
		CommandID: c.ID,
		SensorID:  c.SensorID,
		Action:    c.Action,
		Status:    c.Status,
		Message:   c.Message,
		LatencyMS: float64(latency) / float64(time.Millisecond),
	})
}

// handleTimeout runs on the worker goroutine when the timer of id fires.
func (d *Devices) handleTimeout(ctx context.Context, id string) {
	p, ok := d.lookup(id)
	if !ok {
		return // the response was handled after the timer fired
	}
	at := d.now()
	c, err := d.store.FinishCommand(ctx, id, model.CommandTimeout, d.timeoutMessage(), at)
	switch {
	case d.notFound(err):
		d.forget(id) // the response (or a failed publish) won the race
		return
	case err != nil:
		// Keep the entry and try again later: a command must not stay
		// pending in the store just because it was down for a moment.
		d.log.Error("devices: record command timeout; will retry", "command_id", id, "retry_in", d.timeout, "err", err)
		d.mu.Lock()
		if cur, ok := d.pending[id]; ok && cur == p {
			d.armLocked(id, p, d.timeout)
		}
		d.mu.Unlock()
		return
	}
	d.forget(id)
	d.m.commands.WithLabelValues(outcomeTimeout).Inc()
	d.notify(ctx, p.user, p.ref, Response{
		CommandID: c.ID,
		SensorID:  c.SensorID,
		Action:    c.Action,
		Status:    c.Status,
		Message:   c.Message,
		LatencyMS: latencyMS(p.issued, at),
	})
}

func (d *Devices) timeoutMessage() string {
	return fmt.Sprintf("no response from device within %s", d.timeout)
}

// sweep times out the commands still pending well past their timeout:
// issued by an instance that died before its timer fired (its timers died
// with it) and not reloaded by a start since. Any instance may run it, at
// any time: the store finishes each command once, so each times out once
// and its user hears it once, wherever they are connected (a reliable
// message, stored and relayed by the hub). Runs on the worker goroutine.
func (d *Devices) sweep(ctx context.Context) {
	at := d.now()
	cmds, err := d.store.TimeoutCommands(ctx, at.Add(-d.timeout-sweepSlack), d.timeoutMessage(), at)
	if err != nil {
		// Once per sweep period at most: the next sweep tries again.
		d.log.Warn("devices: sweep of overdue commands failed; retrying at the next sweep", "err", err)
		return
	}
	for _, c := range cmds {
		var ref json.RawMessage
		if p, ok := d.lookup(c.ID); ok {
			ref = p.ref // ours after all (a timeout that kept failing to store)
		}
		d.forget(c.ID)
		d.m.commands.WithLabelValues(outcomeTimeout).Inc()
		d.notify(ctx, c.IssuedBy, ref, Response{
			CommandID: c.ID,
			SensorID:  c.SensorID,
			Action:    c.Action,
			Status:    c.Status,
			Message:   c.Message,
			LatencyMS: latencyMS(c.IssuedAt, at),
		})
	}
	if len(cmds) > 0 {
		d.log.Info("devices: timed out commands left pending by another run or instance", "count", len(cmds))
	}
}

func (d *Devices) reject(reason, topic, id string) {
	d.m.rejected.WithLabelValues(reason).Inc()
	d.log.Debug("devices: response rejected", "reason", reason, "topic", topic, "command_id", id)
}

func (d *Devices) rejectStoreError(topic, id string, err error) {
	d.m.rejected.WithLabelValues(reasonStoreError).Inc()
	d.log.Error("devices: response dropped: store error", "topic", topic, "command_id", id, "err", err)
}
