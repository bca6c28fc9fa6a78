package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Resume: a reconnecting client names what it saw last, per stream, and
// gets what it missed from storage before live messages continue
// (docs/protocol.md, "Resuming after a reconnect").
//
// The hand-over, on the connection's reader goroutine:
//  1. hold: from now on live messages for this connection wait in its
//     held list instead of its send queue (conn.push);
//  2. read every stream's replay from storage (Replayers);
//  3. under the connection's lock: queue the replay and the resumed
//     reply, then the held messages the replay does not carry (same
//     resume key), and stop holding.
//
// A message committed before step 1 is in the replay; one committed after
// step 2 read is only live, so held; one in between may be in both, and
// step 3 keeps the replayed copy. The replay is a prefix of each stream's
// commit order (storage commits each stream in order), so a held message
// it does not carry is newer than all it carries: order holds even when
// live messages lag behind storage (with several instances the backplane
// may deliver a batch after the replay has read it, and later ones). Live
// copies pushed after the hand-over are left out for replayedWindow.
// Nothing is lost, nothing comes twice, and nothing comes out of order.

// HandleResume registers fn as the replayer of stream. It must be called
// before the first Serve.
func (h *Hub) HandleResume(stream string, fn protocol.Replayer) {
	if _, dup := h.replayers[stream]; dup {
		panic("hub: duplicate replayer for " + stream)
	}
	h.replayers[stream] = fn
}

// resumeWait is how long a connection whose auth announced a resume holds
// live messages for the resume request before it sends them anyway.
const resumeWait = 10 * time.Second

// giveUpResume releases the held live messages when the announced resume
// did not come within resumeWait. Called by the timer.
func (c *conn) giveUpResume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.awaitingResume {
		c.awaitingResume = false
		c.h.m.resumes.WithLabelValues("not_sent").Inc()
		c.releaseLocked(func() [][]byte { return nil })
	}
}

// replayedWindow is how long after a resume live messages that the replay
// held already are left out (see dropReplayedLocked).
const replayedWindow = 5 * time.Second

// resumeTimeout bounds reading every stream's replay; live messages are
// held meanwhile.
const resumeTimeout = 10 * time.Second

// decodeResume checks a resume request's data: an object whose fields
// name registered streams. It returns the streams in sorted order.
func decodeResume(data json.RawMessage, known map[string]protocol.Replayer) (map[string]json.RawMessage, []string, *protocol.Error) {
	var cur map[string]json.RawMessage
	if err := json.Unmarshal(data, &cur); err != nil || cur == nil {
		return nil, nil, protocol.Errorf(protocol.CodeBadRequest, `data must be an object like {"readings":{"since":"…"},"rooms":{"general":41},"alerts":318,"direct":55}`)
	}
	streams := make([]string, 0, len(cur))
	for s := range cur {
		if _, ok := known[s]; !ok {
			return nil, nil, protocol.Errorf(protocol.CodeBadRequest, "cannot resume %q; streams: %v", truncate([]byte(s), 32), sortedKeys(known))
		}
		streams = append(streams, s)
	}
	slices.Sort(streams)
	return cur, streams, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// resume serves a resume request. It runs on the reader goroutine, which
// handles one request at a time, so only one resume per connection runs.
func (c *conn) resume(ctx context.Context, req envelope) {
	h := c.h
	cur, streams, e := decodeResume(req.Data, h.replayers)
	if e != nil {
		c.replyError(req.ID, e)
		return
	}
	c.mu.Lock()
	c.holding, c.awaitingResume = true, false
	c.mu.Unlock()
	replays, fail, err := h.readReplays(ctx, c, cur, streams)
	var be *protocol.Error
	switch {
	case errors.As(err, &be):
		h.m.resumes.WithLabelValues("bad_request").Inc()
		h.m.errorsOut.WithLabelValues(be.Code).Inc()
		c.release(only(errorMessage(req.ID, be)))
	case err != nil:
		h.m.resumes.WithLabelValues("error").Inc()
		h.m.errorsOut.WithLabelValues(protocol.CodeInternal).Inc()
		h.log.Error("resume failed", "user", c.user, "err", err)
		c.release(only(errorMessage(req.ID, protocol.Errorf(protocol.CodeInternal, "could not read what you missed; reload over REST"))))
	case fail != nil:
		h.m.resumes.WithLabelValues(fail.Reason).Inc()
		h.m.messagesOut.WithLabelValues("resume_failed").Inc()
		c.release(only(mustEncode("resume_failed", req.ID, fail.Detail)))
	default:
		h.m.resumes.WithLabelValues("resumed").Inc()
		c.release(func() [][]byte {
			msgs, keys := h.replayMessages(replays, streams, req.ID)
			c.replayed, c.replayedUntil = keys, h.now().Add(replayedWindow) // c.mu is held
			return msgs
		})
	}
}

func only(msg []byte) func() [][]byte {
	return func() [][]byte { return [][]byte{msg} }
}

// replayMessages encodes the replay, then the resumed reply with the
// count of each stream; it returns the resume keys replayed, whose held
// and later live copies are left out (dropReplayedLocked).
func (h *Hub) replayMessages(replays map[string]protocol.Replay, streams []string, ref json.RawMessage) ([][]byte, map[string]struct{}) {
	var out [][]byte
	keys := make(map[string]struct{})
	counts := make(map[string]any, len(streams))
	for _, s := range streams {
		r := replays[s]
		var groups map[string]int
		if r.Groups != nil {
			groups = make(map[string]int, len(r.Groups))
			for _, g := range r.Groups {
				groups[g] = 0
			}
		}
		n := 0
		for _, m := range r.Msgs {
			b, err := protocol.Encode(m.Type, nil, nil, m.Data)
			if err != nil {
				h.log.Error("encode replayed message", "type", m.Type, "err", err)
				continue
			}
			out = append(out, b)
			if m.Key != "" {
				keys[m.Key] = struct{}{}
			}
			h.m.messagesOut.WithLabelValues(m.Type).Inc()
			n++
			if groups != nil {
				groups[m.Group]++
			}
		}
		if groups != nil {
			counts[s] = groups
		} else {
			counts[s] = n
		}
	}
	h.m.messagesOut.WithLabelValues("resumed").Inc()
	return append(out, mustEncode("resumed", ref, counts)), keys
}

// readReplays asks each stream's replayer for what the client missed.
// A refusal of any stream refuses the whole resume.
func (h *Hub) readReplays(ctx context.Context, c *conn, cur map[string]json.RawMessage, streams []string) (map[string]protocol.Replay, *protocol.Refusal, error) {
	ctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	out := make(map[string]protocol.Replay, len(streams))
	for _, s := range streams {
		r, err := h.replayers[s](ctx, protocol.ReplayRequest{
			User: c.user, Cursor: cur[s], Max: h.cfg.ResumeMax, MaxAge: h.cfg.ResumeMaxAge,
			Now: h.now(), Sensors: c.filter.Load().sensorFilter(),
		})
		var ref *protocol.Refusal
		switch {
		case errors.As(err, &ref):
			d := map[string]any{"reason": ref.Reason, "stream": s}
			for k, v := range ref.Detail {
				d[k] = v
			}
			return nil, &protocol.Refusal{Reason: ref.Reason, Detail: d}, nil
		case err != nil:
			return nil, nil, fmt.Errorf("hub: resume %s: %w", s, err)
		case len(r.Msgs) > h.cfg.ResumeMax:
			return nil, &protocol.Refusal{Reason: protocol.RefusedTooMany, Detail: map[string]any{
				"reason": protocol.RefusedTooMany, "stream": s, "max": h.cfg.ResumeMax}}, nil
		}
		out[s] = r
	}
	return out, nil, nil
}

func (f *filter) sensorFilter() protocol.SensorFilter {
	ids := make([]string, 0, len(f.set))
	for s := range f.set {
		ids = append(ids, s)
	}
	slices.Sort(ids)
	if f.all {
		return protocol.SensorFilter{All: true, Except: ids}
	}
	return protocol.SensorFilter{Only: ids}
}

// ReadingHistory reads stored readings for the readings stream.
type ReadingHistory interface {
	// ReadingsSince returns up to limit readings with ts >= since, ordered
	// by ts, of the sensors in only (nil: all) that are not in except.
	ReadingsSince(ctx context.Context, since time.Time, only, except []string, limit int) ([]model.Reading, error)
	// ReadingsFromSeq returns up to limit readings committed in batch seq
	// or later, in commit order, with the same filter.
	ReadingsFromSeq(ctx context.Context, seq int64, only, except []string, limit int) ([]model.Reading, error)
}

// ReplayReadings is the replayer of the readings stream, with the
// subscription's sensors or those listed:
//   - {"seq":<seq>,"since":"<RFC 3339>"} replays every reading committed
//     in batch seq or later, in commit order: exact, whatever the readings'
//     own timestamps (the client drops the ones of batch seq it holds).
//     since, required with seq, bounds how far back.
//   - {"since":"<RFC 3339>"} replays every stored reading with ts >= since,
//     ordered by ts: for clients that saw no seq.
func ReplayReadings(st ReadingHistory) protocol.Replayer {
	return func(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
		var cur struct {
			Seq     *int64   `json:"seq"`
			Since   string   `json:"since"`
			Sensors []string `json:"sensors"`
		}
		if err := json.Unmarshal(req.Cursor, &cur); err != nil || cur.Since == "" || (cur.Seq != nil && *cur.Seq < 0) {
			return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, `readings must be {"seq":<highest seq seen>,"since":"<RFC 3339 time of the newest reading seen>","sensors":[…]}`)
		}
		since, err := time.Parse(time.RFC3339Nano, cur.Since)
		if err != nil {
			return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "readings.since %q is not an RFC 3339 time", truncate([]byte(cur.Since), 40))
		}
		only, except := req.Sensors.Only, req.Sensors.Except
		if req.Sensors.All {
			only = nil
		}
		if cur.Sensors != nil {
			for _, s := range cur.Sensors {
				if err := model.ValidID(s); err != nil {
					return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "readings.sensors: %q: %v", truncate([]byte(s), 40), err)
				}
			}
			only, except = cur.Sensors, nil
		}
		if req.Now.Sub(since) > req.MaxAge {
			return protocol.Replay{}, &protocol.Refusal{Reason: protocol.RefusedTooOld, Detail: map[string]any{"max_age_seconds": req.MaxAge.Seconds()}}
		}
		var rs []model.Reading
		if cur.Seq != nil {
			rs, err = st.ReadingsFromSeq(ctx, *cur.Seq, only, except, req.Max+1)
		} else {
			rs, err = st.ReadingsSince(ctx, since, only, except, req.Max+1)
		}
		if err != nil {
			return protocol.Replay{}, err
		}
		if len(rs) > req.Max {
			return protocol.Replay{}, protocol.TooMany(req.Max)
		}
		out := make([]protocol.Replayed, len(rs))
		for i, r := range rs {
			out[i] = protocol.Replayed{Type: "reading", Data: r, Key: r.ResumeKey()}
		}
		return protocol.Replay{Msgs: out}, nil
	}
}
