package rooms

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Resume streams of rooms (docs/protocol.md, "Resuming after a
// reconnect"): "rooms" replays chat messages per room above the last id
// the client saw, "direct" the user's direct messages above the last id.
//
// In a cluster, messages committed on different instances reach a
// connection by different paths, so possibly out of id order: a client
// may have seen 12 but not yet 11 when it disconnects, and a replay from
// 12 would skip 11. So there each replay also carries an overlap: the
// messages at or below the cursor stored in the last ResumeOverlap (at
// most overlapMax of them), which the client de-duplicates by id. Once a
// message is that old, every instance has delivered it long ago.

// ResumeOverlap and overlapMax bound the overlap of a replay in a
// cluster: by age and by count.
const (
	ResumeOverlap = 10 * time.Second
	overlapMax    = 100
)

// overlapSince returns since when a replay's overlap reaches, and
// whether there is one (a single instance delivers in id order: none).
func (r *Rooms) overlapSince(now time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Add(-ResumeOverlap), r.cluster != nil
}

// replayRooms serves {"rooms":{"general":41,"ops-night":7}}. Rooms are
// public, as for history; a room that no longer exists replays nothing.
func (r *Rooms) replayRooms(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
	var cur map[string]int64
	if err := json.Unmarshal(req.Cursor, &cur); err != nil || cur == nil {
		return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, `rooms must be an object of room names and the last message id seen, e.g. {"general":41}`)
	}
	names := make([]string, 0, len(cur))
	for name, after := range cur {
		if err := model.ValidRoomName(name); err != nil {
			return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "rooms: %v", err)
		}
		if after < 0 {
			return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "rooms: %s: the last id seen cannot be negative", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	out := protocol.Replay{Groups: names}
	for _, name := range names {
		var ms []model.ChatMessage
		if since, ok := r.overlapSince(req.Now); ok && cur[name] > 0 {
			over, err := r.st.ChatMessagesOverlap(ctx, name, cur[name], since, overlapMax)
			if err != nil {
				return protocol.Replay{}, err
			}
			ms = over
		}
		left := req.Max + 1 - len(out.Msgs) - len(ms)
		if left <= 0 {
			return protocol.Replay{}, protocol.TooMany(req.Max)
		}
		after, err := r.st.ChatMessagesAfter(ctx, name, cur[name], left)
		if err != nil {
			return protocol.Replay{}, err
		}
		ms = append(ms, after...)
		if len(out.Msgs)+len(ms) > req.Max {
			return protocol.Replay{}, protocol.TooMany(req.Max)
		}
		for _, m := range ms {
			out.Msgs = append(out.Msgs, protocol.Replayed{Type: "chat_message", Data: m, Key: m.ResumeKey(), Group: name})
		}
	}
	return out, nil
}

// replayDirect serves {"direct":55}: the direct messages the user sent or
// received with ids above 55. They carry no delivery id: acked delivery of
// the ones still unacknowledged goes on as before (clients de-duplicate
// direct messages by data.id).
func (r *Rooms) replayDirect(ctx context.Context, req protocol.ReplayRequest) (protocol.Replay, error) {
	var after int64
	if err := json.Unmarshal(req.Cursor, &after); err != nil || after < 0 {
		return protocol.Replay{}, protocol.Errorf(protocol.CodeBadRequest, "direct must be the last direct message id seen, a number ≥ 0")
	}
	var ms []model.DirectMessage
	if since, ok := r.overlapSince(req.Now); ok && after > 0 {
		over, err := r.st.DirectMessagesOverlap(ctx, req.User, after, since, overlapMax)
		if err != nil {
			return protocol.Replay{}, err
		}
		ms = over
	}
	more, err := r.st.DirectMessagesAfter(ctx, req.User, after, req.Max+1)
	if err != nil {
		return protocol.Replay{}, err
	}
	ms = append(ms, more...)
	if len(ms) > req.Max {
		return protocol.Replay{}, protocol.TooMany(req.Max)
	}
	out := protocol.Replay{Msgs: make([]protocol.Replayed, len(ms))}
	for i, m := range ms {
		out.Msgs[i] = protocol.Replayed{Type: "direct_message", Data: m, Key: m.ResumeKey()}
	}
	return out, nil
}
