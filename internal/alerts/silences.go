package alerts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Silence events, the labels of watchroom_silences_total.
const (
	silenceCreated = "created"
	silenceEnded   = "ended"   // ended early by someone
	silenceExpired = "expired" // reached its until
)

// silenceForLocked returns the id of a silence in force at now that
// covers kind of series key (the one lasting longest when several do),
// or 0.
func (d *Detector) silenceForLocked(key seriesKey, kind int, now time.Time) int64 {
	var id int64
	var until time.Time
	rk := model.RuleKindOf(kindNames[kind])
	for _, si := range d.silences[key.sensor] {
		if si.InForce(now) && si.Covers(key.sensor, key.metric, rk) && si.Until.After(until) {
			id, until = si.ID, si.Until
		}
	}
	return id
}

// installSilenceLocked adds si to the cache. Its strings are copied: the
// caller's may alias reused buffers.
func (d *Detector) installSilenceLocked(si model.Silence) {
	si.SensorID, si.Metric, si.Kind = strings.Clone(si.SensorID), strings.Clone(si.Metric), strings.Clone(si.Kind)
	d.silences[si.SensorID] = append(d.silences[si.SensorID], si)
}

func (d *Detector) dropSilenceLocked(sensorID string, id int64) {
	list := slices.DeleteFunc(d.silences[sensorID], func(si model.Silence) bool { return si.ID == id })
	if len(list) == 0 {
		delete(d.silences, sensorID)
	} else {
		d.silences[sensorID] = list
	}
}

// expireSilences removes the silences whose until has passed at now, and
// logs and counts each. Called by Run's goroutine every CheckInterval.
func (d *Detector) expireSilences(now time.Time) {
	var expired []model.Silence
	d.mu.Lock()
	for sensor, list := range d.silences {
		for _, si := range list {
			if !si.InForce(now) {
				expired = append(expired, si)
			}
		}
		list = slices.DeleteFunc(list, func(si model.Silence) bool { return !si.InForce(now) })
		if len(list) == 0 {
			delete(d.silences, sensor)
		} else {
			d.silences[sensor] = list
		}
	}
	d.mu.Unlock()
	for _, si := range expired {
		d.m.silences.WithLabelValues(silenceExpired).Inc()
		d.log.Info("silence expired", silenceAttrs(si)...)
	}
}

func silenceAttrs(si model.Silence) []any {
	return []any{"silence_id", si.ID, "sensor_id", si.SensorID, "metric", si.Metric, "kind", si.Kind,
		"until", si.Until, "created_by", si.CreatedBy}
}

// Silences lists silences, newest first (GET /api/silences).
func (d *Detector) Silences(ctx context.Context, f model.SilenceFilter) ([]model.Silence, error) {
	out, err := d.store.Silences(ctx, f)
	if err != nil {
		return nil, errorf("silences", err)
	}
	return out, nil
}

// CreateSilence stores a silence by user from now until si.Until (its
// SensorID, Metric, Kind and Reason as given; the rest is set here),
// applies it to the next evaluation, logs it, and tells every connection.
// si must pass model.ValidateSilence at the detector's clock.
func (d *Detector) CreateSilence(ctx context.Context, user string, si model.Silence) (model.Silence, error) {
	now := d.cfg.Now()
	si = model.Silence{SensorID: si.SensorID, Metric: si.Metric, Kind: si.Kind, Reason: si.Reason,
		CreatedBy: user, CreatedAt: now, Until: si.Until}
	if err := model.ValidateSilence(si, now); err != nil {
		return model.Silence{}, fmt.Errorf("alerts: create silence: %w", err)
	}
	stored, err := d.store.InsertSilence(ctx, si)
	if err != nil {
		return model.Silence{}, errorf("create silence", err)
	}
	d.mu.Lock()
	d.installSilenceLocked(stored)
	d.mu.Unlock()
	d.m.silences.WithLabelValues(silenceCreated).Inc()
	d.log.Info("silence created", append(silenceAttrs(stored), "reason", stored.Reason)...)
	d.broadcast(protocol.TypeSilence, stored)
	return stored, nil
}

// EndSilence ends silence id early on behalf of user, logs it and tells
// every connection. An unknown id is an error matching model.ErrNotFound;
// one that already ended or expired, model.ErrConflict.
func (d *Detector) EndSilence(ctx context.Context, id int64, user string) (model.Silence, error) {
	si, changed, err := d.store.EndSilence(ctx, id, user, d.cfg.Now())
	if err != nil {
		return model.Silence{}, errorf("end silence", err)
	}
	if !changed {
		if si.EndedBy != nil {
			return si, fmt.Errorf("silence %d was already ended by %s: %w", id, *si.EndedBy, model.ErrConflict)
		}
		return si, fmt.Errorf("silence %d already expired at %s: %w", id, protocol.FormatTime(si.Until), model.ErrConflict)
	}
	d.mu.Lock()
	d.dropSilenceLocked(si.SensorID, si.ID)
	d.mu.Unlock()
	d.m.silences.WithLabelValues(silenceEnded).Inc()
	d.log.Info("silence ended", append(silenceAttrs(si), "ended_by", user)...)
	d.broadcast(protocol.TypeSilence, si)
	return si, nil
}

// broadcast tells every connection; a failure (an encoding bug: the hub
// only queues) is counted and logged, the change itself is stored.
func (d *Detector) broadcast(typ string, data any) {
	if d.bc == nil {
		return
	}
	if err := d.bc.Broadcast(typ, data); err != nil {
		d.m.dropped.WithLabelValues(reasonBroadcastFailed).Inc()
		d.log.Warn("alerts: broadcasting a change failed; clients see it over REST", "type", typ, "err", err)
	}
}
