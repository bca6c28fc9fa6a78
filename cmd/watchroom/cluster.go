package main

import (
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/watchroom/watchroom/internal/backplane"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/rooms"
)

// Event kinds on the backplane besides the readings (docs/deploy.md,
// "Scaling out").
const (
	eventFrame    = "frame"    // a hub message for other instances' connections (hub.Frame)
	eventPresence = "presence" // rooms.PresenceUpdate
	eventRoom     = "room"     // {"room":name}: its membership changed
)

// alertsResumeOverlap is how many alert event ids below a resume's cursor
// are replayed too with several instances (docs/protocol.md).
const alertsResumeOverlap = 20

// clusterLink carries the hub's frames and rooms' news over the backplane
// and hands what the other instances send to the local hub and rooms.
type clusterLink struct {
	bp  *backplane.Backplane
	log *slog.Logger
}

var (
	_ hub.Relay     = clusterLink{}
	_ rooms.Cluster = clusterLink{}
)

func (l clusterLink) publish(kind string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		l.log.Error("cluster: encode event", "kind", kind, "err", err) // a bug: every value here encodes
		return
	}
	l.bp.Publish(kind, b)
}

func (l clusterLink) Relay(f hub.Frame)                      { l.publish(eventFrame, f) }
func (l clusterLink) PublishPresence(p rooms.PresenceUpdate) { l.publish(eventPresence, p) }
func (l clusterLink) PublishRoomChange(room string) {
	l.publish(eventRoom, map[string]string{"room": room})
}

// joinCluster wires h and rm to the other instances through bp. Called
// while building, before anything serves or runs.
func joinCluster(bp *backplane.Backplane, origin string, h *hub.Hub, rm *rooms.Rooms, log *slog.Logger) error {
	l := clusterLink{bp: bp, log: log}
	h.SetRelay(l)
	rm.SetCluster(l, origin)
	will, err := json.Marshal(rm.GoneUpdate())
	if err != nil {
		return err
	}
	if err := bp.SetWill(eventPresence, will); err != nil {
		return err
	}
	bp.OnConnect(rm.Resync)
	// A body that does not decode is counted and logged by the backplane.
	bp.Handle(eventFrame, func(_ string, body []byte) error {
		var f hub.Frame
		if err := json.Unmarshal(body, &f); err != nil {
			return err
		}
		h.Deliver(f)
		return nil
	})
	bp.Handle(eventPresence, func(_ string, body []byte) error {
		var p rooms.PresenceUpdate
		if err := json.Unmarshal(body, &p); err != nil {
			return err
		}
		rm.PeerPresence(p)
		return nil
	})
	bp.Handle(eventRoom, func(_ string, body []byte) error {
		var c struct{ Room string }
		if err := json.Unmarshal(body, &c); err != nil {
			return err
		}
		if c.Room == "" {
			return errors.New("no room")
		}
		rm.PeerRoomChanged(c.Room)
		return nil
	})
	return nil
}
