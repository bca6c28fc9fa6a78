package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// ReplyType is the type of the reply to alert_ack and alert_resolve: the
// alert as it now is. The change also goes to room alerts as "alert".
const ReplyType = "alert_updated"

// HandleAck serves alert_ack {"alert_id":N}: an open alert becomes
// acknowledged by the user; a resolved alert nobody acknowledged (it
// resolved by itself) gets acked_by and stays resolved, so the dashboard
// can keep it in view until someone has seen it. Acknowledging an
// acknowledged alert changes nothing and answers it as it is; a resolved
// one already acknowledged is a conflict.
func (d *Detector) HandleAck(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	id, herr := decodeAck(req.Data)
	if herr != nil {
		return protocol.Reply{}, herr
	}
	a, changed, err := d.store.AckAlert(ctx, id, req.User, d.cfg.Now())
	if err != nil {
		return protocol.Reply{}, d.lifecycleError(id, err)
	}
	if !changed {
		if a.State == model.AlertResolved {
			return protocol.Reply{}, resolvedConflict(a)
		}
		return protocol.Reply{Type: ReplyType, Data: a}, nil // already acknowledged
	}
	d.m.acked.WithLabelValues(a.Kind).Inc()
	d.post(ctx, a, op{})
	return protocol.Reply{Type: ReplyType, Data: a}, nil
}

// HandleResolve serves alert_resolve {"alert_id":N,"note":"..."}: a live
// alert becomes resolved by the user, with the note kept. Resolving a
// resolved alert is a conflict.
func (d *Detector) HandleResolve(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	id, note, herr := decodeResolve(req.Data)
	if herr != nil {
		return protocol.Reply{}, herr
	}
	a, changed, err := d.store.ResolveAlert(ctx, id, req.User, note, d.cfg.Now())
	if err != nil {
		return protocol.Reply{}, d.lifecycleError(id, err)
	}
	if !changed {
		return protocol.Reply{}, resolvedConflict(a)
	}
	d.forget(a)
	d.m.resolved.WithLabelValues(a.Kind, a.Severity, "user").Inc()
	d.post(ctx, a, op{})
	return protocol.Reply{Type: ReplyType, Data: a}, nil
}

// forget tells detection that a user resolved a live alert, so that the
// next breach opens a new one.
func (d *Detector) forget(a model.Alert) {
	k := kindIndex(a.Kind)
	if k < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.series[seriesKey{a.SensorID, a.Metric}]
	if s == nil {
		return
	}
	ks := &s.kinds[k]
	if !ks.live || ks.alertID != a.ID {
		return
	}
	ks.normal = 0
	ks.alertID = 0
	if len(ks.ops) == 0 || ks.ops[len(ks.ops)-1].resolve {
		ks.live = false
		return
	}
	// Breaches not yet stored came after the alert the user resolved: they
	// open the next one, which detection then tracks (and auto-resolves).
	ks.gen++
	for i := range ks.ops {
		ks.ops[i].gen = ks.gen
	}
}

func (d *Detector) lifecycleError(id int64, err error) error {
	if errors.Is(err, model.ErrNotFound) {
		return protocol.Errorf(protocol.CodeNotFound, "no alert %d", id)
	}
	return err
}

func resolvedConflict(a model.Alert) error {
	by := ""
	if a.ResolvedBy != nil {
		by = " by " + *a.ResolvedBy
	}
	return protocol.Errorf(protocol.CodeConflict, "alert %d is already resolved%s", a.ID, by)
}

// decodeAck decodes the data of alert_ack, {"alert_id":N}.
func decodeAck(raw json.RawMessage) (int64, *protocol.Error) {
	var data struct {
		AlertID json.RawMessage `json:"alert_id"`
	}
	if err := json.Unmarshal(raw, &data); err != nil || raw == nil {
		return 0, protocol.Errorf(protocol.CodeBadRequest, `data must be {"alert_id":<id>}`)
	}
	return parseAlertID(data.AlertID)
}

// decodeResolve decodes the data of alert_resolve,
// {"alert_id":N,"note":"..."}; the note comes back trimmed.
func decodeResolve(raw json.RawMessage) (int64, string, *protocol.Error) {
	var data struct {
		AlertID json.RawMessage `json:"alert_id"`
		Note    string          `json:"note"`
	}
	if err := json.Unmarshal(raw, &data); err != nil || raw == nil {
		return 0, "", protocol.Errorf(protocol.CodeBadRequest, `data must be {"alert_id":<id>,"note":"..."}`)
	}
	id, herr := parseAlertID(data.AlertID)
	if herr != nil {
		return 0, "", herr
	}
	note := strings.TrimSpace(data.Note)
	if n := utf8.RuneCountInString(note); n > model.MaxAlertNote {
		return 0, "", protocol.Errorf(protocol.CodeBadRequest, "note is %d characters; at most %d", n, model.MaxAlertNote)
	}
	return id, note, nil
}

// parseAlertID accepts a positive integer, as a JSON number or string.
func parseAlertID(raw json.RawMessage) (int64, *protocol.Error) {
	raw = bytes.TrimSpace(raw)
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			s = ""
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if len(raw) == 0 || string(raw) == "null" || err != nil || id <= 0 {
		return 0, protocol.Errorf(protocol.CodeBadRequest, "alert_id must be a positive integer (the alert's id)")
	}
	return id, nil
}

// Alerts lists alerts, newest first (GET /api/alerts).
func (d *Detector) Alerts(ctx context.Context, f model.AlertFilter) ([]model.Alert, error) {
	as, err := d.store.Alerts(ctx, f)
	if err != nil {
		return nil, errorf("alerts", err)
	}
	return as, nil
}

// Alert returns one alert, its resolve note included; an unknown id is an
// error matching the store's not-found error.
func (d *Detector) Alert(ctx context.Context, id int64) (model.Alert, error) {
	a, err := d.store.Alert(ctx, id)
	if err != nil {
		return model.Alert{}, errorf("alert", err)
	}
	return a, nil
}

// AlertMessages returns the chat messages that discuss alert id, oldest
// first.
func (d *Detector) AlertMessages(ctx context.Context, id int64, limit int) ([]model.ChatMessage, error) {
	ms, err := d.store.AlertMessages(ctx, id, limit)
	if err != nil {
		return nil, errorf("alert messages", err)
	}
	return ms, nil
}
