package rooms

import (
	"context"
	"time"

	"github.com/watchroom/watchroom/internal/protocol"
)

var _ protocol.PresenceListener = (*Rooms)(nil)

// Presence. The hub calls Online and Offline with its lock held, in order,
// when a user's first connection opens and last connection closes. They
// only update the online set and queue an event; Run turns the events into
// notifications:
//
//   - online: if an offline grace timer of that user is running, stop it
//     and send nothing (a blip). Otherwise their rooms get user_joined with
//     reason "online".
//   - offline: start the grace timer.
//   - expired (the timer fired, queued by the timer): if this is still the
//     user's current timer, their rooms get user_left with reason
//     "offline".
//
// Timers carry a generation, so a timer that fires after it was stopped
// (Stop lost the race) is recognised as stale and ignored.

type presenceKind int

const (
	eventOnline presenceKind = iota
	eventOffline
	eventExpired
	eventTick // cluster.go: publish the full set, expire silent peers
)

type presenceEvent struct {
	kind presenceKind
	user string
	gen  uint64 // eventExpired: the timer's generation
}

// graceTimer is a running offline grace period; Run's own state.
type graceTimer struct {
	gen  uint64
	stop func() bool
}

// Online implements protocol.PresenceListener. It must not block nor call the
// hub: the hub's lock is held.
func (r *Rooms) Online(user string) {
	r.mu.Lock()
	r.local[user] = struct{}{}
	r.publishDeltaLocked(user, true)
	r.mergedOnlineLocked(user, true)
	r.mu.Unlock()
}

// Offline implements protocol.PresenceListener, like Online.
func (r *Rooms) Offline(user string) {
	r.mu.Lock()
	delete(r.local, user)
	r.publishDeltaLocked(user, false)
	r.mergedOfflineLocked(user, true)
	r.mu.Unlock()
}

func (r *Rooms) enqueue(e presenceEvent) {
	r.mu.Lock()
	r.enqueueLocked(e)
	r.mu.Unlock()
}

func (r *Rooms) enqueueLocked(e presenceEvent) {
	if len(r.events) >= maxPresenceQueue {
		r.m.dropped.WithLabelValues(dropPresenceQueueFull).Inc()
		return
	}
	r.events = append(r.events, e)
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run turns presence events into notifications until ctx is done. It
// must run for presence notifications to be sent; requests work without
// it.
func (r *Rooms) Run(ctx context.Context) error {
	timers := map[string]graceTimer{}
	var gen uint64
	r.mu.Lock()
	clustered := r.cluster != nil
	r.mu.Unlock()
	stopTick := func() bool { return false }
	tick := func() {
		stopTick = r.cfg.AfterFunc(r.cfg.PresenceEvery, func() { r.enqueue(presenceEvent{kind: eventTick}) })
	}
	if clustered {
		tick()
	}
	defer func() {
		for _, t := range timers {
			t.stop()
		}
		stopTick()
		if clustered {
			// Our users are no longer online here: the others need not
			// wait for the TTL.
			r.mu.Lock()
			r.cluster.PublishPresence(PresenceUpdate{Origin: r.origin, Run: r.run, Gone: true})
			r.mu.Unlock()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
		r.mu.Lock()
		events := r.events
		r.events = nil
		r.mu.Unlock()
		for _, e := range events {
			switch e.kind {
			case eventOnline:
				if t, ok := timers[e.user]; ok {
					t.stop()
					delete(timers, e.user)
					r.m.presence.WithLabelValues("reconnect_in_grace").Inc()
					continue
				}
				r.announce(ctx, e.user, "user_joined", reasonOnline)
				r.m.presence.WithLabelValues("online").Inc()
			case eventOffline:
				if t, ok := timers[e.user]; ok { // cannot happen: events alternate
					t.stop()
				}
				gen++
				g, user := gen, e.user
				stop := r.cfg.AfterFunc(r.cfg.OfflineGrace, func() {
					r.enqueue(presenceEvent{kind: eventExpired, user: user, gen: g})
				})
				timers[e.user] = graceTimer{gen: g, stop: stop}
			case eventTick:
				r.mu.Lock()
				r.publishFullLocked(false)
				r.expirePeersLocked(r.cfg.Now())
				r.mu.Unlock()
				tick()
			case eventExpired:
				t, ok := timers[e.user]
				if !ok || t.gen != e.gen {
					continue // stopped meanwhile
				}
				// Announced even if the user is back by now: they were away
				// longer than the grace, and their queued online event finds
				// no timer and announces the return.
				delete(timers, e.user)
				r.announce(ctx, e.user, "user_left", reasonOffline)
				r.m.presence.WithLabelValues("offline").Inc()
			}
		}
	}
}

// announce tells the online members of every room of user that user came
// or went. A failure is logged: presence is best effort, and clients that
// missed it see the state in the next room list.
func (r *Rooms) announce(ctx context.Context, user, typ, reason string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rooms, err := r.st.UserRooms(ctx, user)
	if err != nil {
		r.m.dropped.WithLabelValues(dropPresence).Inc()
		r.log.Warn("presence not announced", "user", user, "type", typ, "err", err)
		return
	}
	for _, rm := range rooms {
		to, err := r.onlineMembers(ctx, rm)
		if err != nil {
			r.m.dropped.WithLabelValues(dropPresence).Inc()
			r.log.Warn("presence not announced", "user", user, "room", rm.Name, "type", typ, "err", err)
			continue
		}
		// Every instance announces the transitions of the merged view to
		// its own connections (cluster.go).
		to = without(to, user)
		if len(to) == 0 {
			continue
		}
		if err := r.hub.SendToLocalUsers(to, typ, roomUser{Room: rm.Name, User: user, Reason: reason}); err != nil {
			r.m.dropped.WithLabelValues(dropPresence).Inc()
			r.log.Error("presence not announced", "user", user, "room", rm.Name, "type", typ, "err", err)
		}
	}
}
