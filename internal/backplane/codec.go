package backplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/watchroom/watchroom/internal/model"
)

// Topic carries every committed batch of readings between instances.
const Topic = "watchroom/v1/readings"

// wireVersion is the "v" of a message; a message of another version is
// dropped (reason malformed), and seen as a gap.
const wireVersion = 1

// partSize is the most readings one message carries: 500 readings of the
// longest ids and units stay under 200 KB, within the 256 KiB
// message_size_limit of the shipped mosquitto.conf.
const partSize = 500

// maxParts bounds the parts a received batch may announce (a batch holds
// at most 100,000 readings plus one message's, see the batch size's
// range).
const maxParts = 1000

// wireBatch is one message on Topic: part Part of Parts of the batch
// committed as Seq by instance Origin. A batch that stored nothing new is
// one part without readings: the seq is used up, nobody waits for it.
type wireBatch struct {
	V        int             `json:"v"`
	Origin   string          `json:"origin"`
	Seq      int64           `json:"seq"`
	Part     int             `json:"part"`
	Parts    int             `json:"parts"`
	Readings []model.Reading `json:"readings"`
}

// encode splits a committed batch into messages of at most partSize
// readings (one message for an empty batch).
func encode(origin string, seq int64, rs []model.Reading) ([][]byte, error) {
	parts := max(1, (len(rs)+partSize-1)/partSize)
	out := make([][]byte, 0, parts)
	for i := range parts {
		chunk := rs[min(i*partSize, len(rs)):min((i+1)*partSize, len(rs))]
		if chunk == nil {
			chunk = []model.Reading{}
		}
		b, err := json.Marshal(wireBatch{V: wireVersion, Origin: origin, Seq: seq, Part: i, Parts: parts, Readings: chunk})
		if err != nil {
			return nil, fmt.Errorf("backplane: encode batch %d: %w", seq, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// decode checks a message and returns it as a part with each reading's
// Seq set.
func decode(payload []byte) (part, error) {
	var w wireBatch
	if err := json.Unmarshal(payload, &w); err != nil {
		return part{}, fmt.Errorf("backplane: decode: %w", err)
	}
	switch {
	case w.V != wireVersion:
		return part{}, fmt.Errorf("backplane: decode: version %d, want %d", w.V, wireVersion)
	case w.Origin == "" || w.Seq < 1:
		return part{}, errors.New("backplane: decode: origin and seq are required")
	case w.Parts < 1 || w.Parts > maxParts || w.Part < 0 || w.Part >= w.Parts:
		return part{}, fmt.Errorf("backplane: decode: part %d of %d", w.Part, w.Parts)
	}
	for i := range w.Readings {
		r := &w.Readings[i]
		if model.ValidID(r.SensorID) != nil || model.ValidID(r.Metric) != nil || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.TS.IsZero() {
			return part{}, fmt.Errorf("backplane: decode: reading %d is not a stored reading", i)
		}
		r.Seq = w.Seq
	}
	return part{origin: w.Origin, seq: w.Seq, index: w.Part, count: w.Parts, readings: w.Readings}, nil
}
