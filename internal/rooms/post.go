package rooms

import (
	"context"
	"time"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// postTimeout bounds the commit of one batch of chat messages. The batch
// holds other senders' messages too, so it does not end with the
// connection of the sender that commits it.
const postTimeout = 10 * time.Second

// chatPost is one chat message waiting to be stored and fanned out.
type chatPost struct {
	msg model.ChatMessage
	// room is the room as the sender's membership check found it: every
	// post of a batch has the same, and the fan-out reads its members.
	room model.Room
	// done receives the outcome, or lead: this post's handler is to
	// commit the next batch itself. Buffered: a lead is taken before the
	// outcome is sent.
	done chan postOutcome
}

type postOutcome struct {
	msg  model.ChatMessage
	err  error
	lead bool
}

// post stores msg in its room and fans it out, by group commit: while a
// batch of the room is committed, messages sent to it queue, and the first
// of them then commits them all in one statement and fans them out in id
// order. A lone message is committed at once; under load the batches grow,
// and the room's throughput with them, instead of every message waiting
// for the commit of each one before it. The handler that commits a batch
// hands the next to the first message queued behind it, so no sender
// waits for more than its own batch and the one before.
func (r *Rooms) post(ctx context.Context, rm model.Room, msg model.ChatMessage) (model.ChatMessage, error) {
	p := &chatPost{msg: msg, room: rm, done: make(chan postOutcome, 1)}
	r.postMu.Lock()
	queued, busy := r.posting[msg.Room]
	r.posting[msg.Room] = append(queued, p)
	r.postMu.Unlock()
	if busy {
		if out := <-p.done; !out.lead {
			return out.msg, out.err
		}
	}
	// Lead: take what is queued (p among it); the key stays while the
	// batch commits, so that later posts queue behind it.
	r.postMu.Lock()
	batch := r.posting[msg.Room]
	r.posting[msg.Room] = nil
	r.postMu.Unlock()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	r.commitPosts(cctx, msg.Room, batch)
	cancel()

	r.postMu.Lock()
	if next := r.posting[msg.Room]; len(next) > 0 {
		next[0].done <- postOutcome{lead: true}
	} else {
		delete(r.posting, msg.Room)
	}
	r.postMu.Unlock()
	out := <-p.done
	return out.msg, out.err
}

// commitPosts stores batch, the messages queued for room, fans each out to
// the members online, in id order, and sends each post its outcome.
func (r *Rooms) commitPosts(ctx context.Context, room string, batch []*chatPost) {
	msgs := make([]model.ChatMessage, len(batch))
	for i, p := range batch {
		msgs[i] = p.msg
	}
	stored, err := r.st.InsertChatMessages(ctx, room, msgs)
	if err != nil {
		gone := r.isNotFound(err) // deleted since the membership check
		if gone {
			r.members.forget(room)
		}
		for _, p := range batch {
			e := err
			if gone {
				e = r.reject(reasonUnknownRoom, protocol.CodeNotFound, "no room %q", room)
			}
			p.done <- postOutcome{err: e}
		}
		return
	}
	r.m.chatMessages.Add(float64(len(stored)))
	r.m.chatBatch.Observe(float64(len(stored)))
	online, merr := r.onlineMembers(ctx, batch[0].room)
	for i, m := range stored {
		if merr != nil {
			// Stored: readers get it from history. The sender learns it
			// was stored from the reply.
			r.m.dropped.WithLabelValues(dropFanout).Inc()
			r.log.Warn("chat message stored but not fanned out", "room", room, "id", m.ID, "err", merr)
		} else {
			to := online
			if !contains(to, m.User) {
				to = append(to, m.User) // the sender is online: it is asking
			}
			r.send(to, "chat_message", m)
		}
		batch[i].done <- postOutcome{msg: m}
	}
}
