package alerts

import (
	"context"
	"encoding/json"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// ReplayAlerts is the replayer of the resume stream "alerts"
// (docs/protocol.md, "Resuming after a reconnect"): {"alerts":318} replays
// every alert whose event_id is above 318 (above 318-ResumeOverlap with
// several instances), once, in its current state, ordered by event_id. Replayed alerts carry no delivery id: the acked
// delivery of the ones still unacknowledged goes on as before, and clients
// keep the version of an alert with the latest updated_at.
func (d *Detector) ReplayAlerts(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
	var after int64
	if err := json.Unmarshal(req.Cursor, &after); err != nil || after < 0 {
		return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "alerts must be the last alert event_id seen, a number ≥ 0")
	}
	// With several instances, from ResumeOverlap event ids back (see
	// Config.ResumeOverlap): still one row per alert, in its current state.
	as, err := d.store.AlertsAfter(ctx, max(0, after-int64(d.cfg.ResumeOverlap)), req.Max+1)
	if err != nil {
		return protocol.Replay{}, err
	}
	if len(as) > req.Max {
		return protocol.Replay{}, protocol.TooMany(req.Max)
	}
	out := protocol.Replay{Msgs: make([]protocol.Replayed, len(as))}
	for i, a := range as {
		out.Msgs[i] = protocol.Replayed{Type: messageType, Data: a, Key: a.ResumeKey()}
	}
	return out, nil
}

// Router is where the /ws requests and resume streams of alerts go: the
// hub.
type Router interface {
	Handle(typ string, min model.Role, fn protocol.HandlerFunc)
	HandleResume(stream string, fn protocol.Replayer)
}

// Register adds to rt the requests alert_ack and alert_resolve (analysts
// and above) and the resume stream "alerts".
func (d *Detector) Register(rt Router) {
	rt.Handle("alert_ack", model.RoleAnalyst, d.HandleAck)
	rt.Handle("alert_resolve", model.RoleAnalyst, d.HandleResolve)
	rt.HandleResume("alerts", d.ReplayAlerts)
}
