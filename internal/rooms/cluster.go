package rooms

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"
)

// Several instances (docs/deploy.md, "Scaling out"). Messages cross
// through the hub (its relay); what rooms itself must tell the other
// instances goes through a Cluster: presence and room changes.
//
// Presence. Each instance knows its own online users (the hub's Online
// and Offline) and publishes every change as a delta, numbered by a
// sequence, plus its full set every PresenceEvery and whenever its
// connection to the others is (re)made. Every instance keeps the sets of
// the others (peers) and takes the union with its own as the online view:
// onlineUsers, the online counts, the recipients of presence and of
// reliable room posts. Transitions of the union (first connection
// anywhere, last connection anywhere gone) feed the same grace logic as on
// one instance (presence.go), and each instance announces them to its own
// connections only (SendToLocalUsers): every connection hears each
// transition once, and a user who moves from instance A to B within the
// grace is never announced offline, since B's delta stops A's timer.
//
// A peer's set is dropped (its users go offline, after the grace) when it
// says it is gone: at shutdown, or by the broker, which publishes its last
// will when its connection dies; and when nothing has come from it for
// PresenceTTL (a peer cut off in a way the broker did not notice). A delta
// that does not follow the last sequence seen (a message lost while the
// connection was down) is ignored, and the peer's next full set repairs
// the view, within PresenceEvery.
//
// A peer's first full set seen in this instance's first PresenceEvery is
// not news: those users were online before this instance started, and its
// clients get the state in their room lists. Later, a peer's users that
// appear are announced like any.

// Cluster carries rooms' news to the other instances (the backplane). Its
// methods must not block and must not call the hub or Rooms:
// PublishPresence is called with the hub's lock and Rooms.mu held, in the
// order of the updates' sequence numbers, and must keep that order.
type Cluster interface {
	PublishPresence(p PresenceUpdate)
	PublishRoomChange(room string)
}

// PresenceUpdate is one instance's presence news.
type PresenceUpdate struct {
	Origin string `json:"origin"` // the instance's id
	// Run identifies one start of the instance: sequences restart with it.
	Run string `json:"run,omitempty"`
	Seq uint64 `json:"seq,omitempty"`
	// Full: Online is the instance's whole online set, or part Part of
	// Parts of it (consecutive Seqs), so that every message stays well
	// under the broker's message size limit. Otherwise Online and Offline
	// are the changes since Seq-1.
	Full    bool     `json:"full,omitempty"`
	Part    int      `json:"part,omitempty"`
	Parts   int      `json:"parts,omitempty"`
	Online  []string `json:"online,omitempty"`
	Offline []string `json:"offline,omitempty"`
	// Gone: the instance stopped (or its broker connection died: its last
	// will); its users are no longer online there.
	Gone bool `json:"gone,omitempty"`
	// Sync asks every other instance for its full set now (sent at start).
	Sync bool `json:"sync,omitempty"`
}

// Defaults of the presence exchange.
const (
	DefaultPresenceEvery = 10 * time.Second
	// DefaultPresenceTTL: three full sets missed.
	DefaultPresenceTTL = 3 * DefaultPresenceEvery
)

// fullPartBytes bounds the user names of one part of a full set: 64 KiB,
// a quarter of the shipped broker's message_size_limit.
const fullPartBytes = 64 << 10

// peer is another instance's online set as last heard. Guarded by
// Rooms.mu.
type peer struct {
	run   string
	seq   uint64
	users map[string]struct{}
	seen  time.Time // last message, by the injected clock
	known bool      // a full set of it has been applied
	// staged collects the parts of a full set until the last one.
	staged     map[string]struct{}
	stagedRun  string
	stagedSeq  uint64
	stagedPart int
}

// SetCluster makes Rooms share presence and room changes with the other
// instances through c; origin is this instance's id. Call it once, before
// Run and before the hub serves.
func (r *Rooms) SetCluster(c Cluster, origin string) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cluster, r.origin, r.run = c, origin, hex.EncodeToString(b[:])
	r.quietUntil = r.cfg.Now().Add(r.cfg.PresenceEvery)
}

// GoneUpdate is the message that tells the others this instance's users
// are gone: the transport registers it as its last will.
func (r *Rooms) GoneUpdate() PresenceUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return PresenceUpdate{Origin: r.origin, Run: r.run, Gone: true}
}

// Resync publishes this instance's full set and asks the others for
// theirs. The transport calls it each time its connection is made.
func (r *Rooms) Resync() {
	r.members.forgetAll() // room changes may have been missed meanwhile
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishFullLocked(true)
}

// publishFullLocked publishes the local online set. r.mu must be held.
func (r *Rooms) publishFullLocked(sync bool) {
	if r.cluster == nil {
		return
	}
	users := make([]string, 0, len(r.local))
	for u := range r.local {
		users = append(users, u)
	}
	slices.Sort(users)
	var parts [][]string
	for start, size := 0, 0; start < len(users) || len(parts) == 0; {
		end := start
		for size = 0; end < len(users) && (end == start || size+len(users[end])+3 <= fullPartBytes); end++ {
			size += len(users[end]) + 3 // quotes and comma
		}
		parts = append(parts, users[start:end])
		start = end
	}
	for i, part := range parts {
		r.seq++
		p := PresenceUpdate{Origin: r.origin, Run: r.run, Seq: r.seq, Full: true, Online: part, Sync: sync && i == 0}
		if len(parts) > 1 {
			p.Part, p.Parts = i, len(parts)
		}
		r.cluster.PublishPresence(p)
	}
}

// publishDeltaLocked publishes one local change. r.mu must be held.
func (r *Rooms) publishDeltaLocked(user string, online bool) {
	if r.cluster == nil {
		return
	}
	r.seq++
	p := PresenceUpdate{Origin: r.origin, Run: r.run, Seq: r.seq}
	if online {
		p.Online = []string{user}
	} else {
		p.Offline = []string{user}
	}
	r.cluster.PublishPresence(p)
}

// PeerPresence applies another instance's presence news. Called by the
// transport's receiver, in the order that instance published; it never
// blocks and never calls the hub.
func (r *Rooms) PeerPresence(p PresenceUpdate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cluster == nil || p.Origin == "" || p.Origin == r.origin {
		return
	}
	now := r.cfg.Now()
	pe := r.peers[p.Origin]
	if pe == nil {
		pe = &peer{users: map[string]struct{}{}}
		r.peers[p.Origin] = pe
	}
	pe.seen = now
	switch {
	case p.Gone:
		if p.Run != "" && pe.run != "" && p.Run != pe.run {
			return // the will of an earlier run, arriving late
		}
		r.setPeerLocked(pe, map[string]struct{}{}, true)
		pe.run, pe.seq = "", 0
		r.m.presencePeer.WithLabelValues("gone").Inc()
	case p.Full:
		users, whole := r.stageLocked(pe, p)
		if !whole {
			break
		}
		// A peer's first set heard in our first PresenceEvery is not news.
		r.setPeerLocked(pe, users, pe.known || now.After(r.quietUntil))
		pe.run, pe.seq, pe.known = p.Run, p.Seq, true
		r.m.presencePeer.WithLabelValues("full").Inc()
	case pe.run != "" && p.Run == pe.run && p.Seq == pe.seq+1:
		pe.seq = p.Seq
		for _, u := range p.Online {
			if _, ok := pe.users[u]; !ok {
				pe.users[u] = struct{}{}
				r.mergedOnlineLocked(u, true)
			}
		}
		for _, u := range p.Offline {
			if _, ok := pe.users[u]; ok {
				delete(pe.users, u)
				r.mergedOfflineLocked(u, true)
			}
		}
		r.m.presencePeer.WithLabelValues("delta").Inc()
	default:
		// Out of sequence: a message was lost. The next full set repairs.
		r.m.presencePeer.WithLabelValues("out_of_sequence").Inc()
		r.peerLog.Do(func() {
			r.log.Info("presence: an instance's update is out of sequence; waiting for its next full set (at most one line per second)",
				"instance", p.Origin, "seq", p.Seq, "last_seq", pe.seq)
		})
	}
	if p.Sync {
		r.publishFullLocked(false)
	}
}

// stageLocked takes one message of a full set and returns the whole set
// once its last part is in. A part that does not follow the one before
// (lost in a reconnect) drops what was staged: the next full set repairs.
func (r *Rooms) stageLocked(pe *peer, p PresenceUpdate) (map[string]struct{}, bool) {
	if p.Parts <= 1 {
		users := make(map[string]struct{}, len(p.Online))
		for _, u := range p.Online {
			users[u] = struct{}{}
		}
		pe.staged = nil
		return users, true
	}
	switch {
	case p.Part == 0:
		pe.staged, pe.stagedRun = make(map[string]struct{}, len(p.Online)*p.Parts), p.Run
	case pe.staged == nil || p.Run != pe.stagedRun || p.Seq != pe.stagedSeq+1 || p.Part != pe.stagedPart+1:
		pe.staged = nil
		r.m.presencePeer.WithLabelValues("out_of_sequence").Inc()
		return nil, false
	}
	for _, u := range p.Online {
		pe.staged[u] = struct{}{}
	}
	pe.stagedSeq, pe.stagedPart = p.Seq, p.Part
	if p.Part < p.Parts-1 {
		return nil, false
	}
	users := pe.staged
	pe.staged = nil
	return users, true
}

// setPeerLocked replaces pe's users with users; news tells whether the
// transitions are announced (not for the first set heard at start).
func (r *Rooms) setPeerLocked(pe *peer, users map[string]struct{}, news bool) {
	old := pe.users
	pe.users = users
	for u := range old {
		if _, ok := users[u]; !ok {
			r.mergedOfflineLocked(u, news)
		}
	}
	for u := range users {
		if _, ok := old[u]; !ok {
			r.mergedOnlineLocked(u, news)
		}
	}
}

// expirePeersLocked drops the sets of peers silent for PresenceTTL.
func (r *Rooms) expirePeersLocked(now time.Time) {
	for origin, pe := range r.peers {
		if len(pe.users) > 0 && now.Sub(pe.seen) >= r.cfg.PresenceTTL {
			r.setPeerLocked(pe, map[string]struct{}{}, true)
			pe.run, pe.seq = "", 0
			r.m.presencePeer.WithLabelValues("expired").Inc()
			r.log.Warn("presence: nothing heard from an instance; its users count as offline", "instance", origin, "silent_for", now.Sub(pe.seen))
		}
	}
}

// onlineAnywhereLocked reports whether user is online on this instance
// or a peer.
func (r *Rooms) onlineAnywhereLocked(user string) bool {
	if _, ok := r.local[user]; ok {
		return true
	}
	for _, pe := range r.peers {
		if _, ok := pe.users[user]; ok {
			return true
		}
	}
	return false
}

// mergedOnlineLocked records that user is online somewhere; if they were
// not before, the union changed: an online event (when news).
func (r *Rooms) mergedOnlineLocked(user string, news bool) {
	if _, ok := r.online[user]; ok {
		return
	}
	r.online[user] = struct{}{}
	r.onlineSorted = nil
	r.m.online.Set(float64(len(r.online)))
	if news {
		r.enqueueLocked(presenceEvent{kind: eventOnline, user: user})
	}
}

// mergedOfflineLocked records that user may have gone offline somewhere;
// if they are online nowhere now, the union changed: an offline event.
// Without news, the user leaves the view silently (a peer's first set).
func (r *Rooms) mergedOfflineLocked(user string, news bool) {
	if _, ok := r.online[user]; !ok || r.onlineAnywhereLocked(user) {
		return
	}
	delete(r.online, user)
	r.onlineSorted = nil
	r.m.online.Set(float64(len(r.online)))
	if news {
		r.enqueueLocked(presenceEvent{kind: eventOffline, user: user})
	}
}

// PeerRoomChanged drops the member copy of room: another instance created,
// joined, left or deleted it. It is loaded again when next needed.
func (r *Rooms) PeerRoomChanged(room string) { r.members.forget(room) }

// roomChanged tells the other instances that room's membership changed.
func (r *Rooms) roomChanged(room string) {
	r.mu.Lock()
	c := r.cluster
	r.mu.Unlock()
	if c != nil {
		c.PublishRoomChange(room)
	}
}
