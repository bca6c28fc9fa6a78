package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Store is the part of the database rooms use.
type Store interface {
	CreateRoom(ctx context.Context, name, kind, creator string) (room model.Room, created bool, err error)
	RoomsCreatedBy(ctx context.Context, creator string) (int, error)
	Membership(ctx context.Context, room, user string) (model.Room, bool, error)
	RoomInfos(ctx context.Context, user string, online []string) ([]model.RoomInfo, error)
	JoinRoom(ctx context.Context, room, user string) (joined bool, err error)
	LeaveRoom(ctx context.Context, room, user string) (left bool, err error)
	RoomMembers(ctx context.Context, room string) ([]string, error)
	UserRooms(ctx context.Context, user string) ([]model.Room, error)
	DeleteRoom(ctx context.Context, room string) (members []string, err error)
	InsertChatMessages(ctx context.Context, room string, ms []model.ChatMessage) ([]model.ChatMessage, error)
	ChatMessages(ctx context.Context, room string, before int64, limit int) ([]model.ChatMessage, error)
	InsertDirectMessage(ctx context.Context, dm model.DirectMessage) (model.DirectMessage, error)
	User(ctx context.Context, name string) (model.User, error)
	ChatMessagesAfter(ctx context.Context, room string, after int64, limit int) ([]model.ChatMessage, error)
	DirectMessagesAfter(ctx context.Context, user string, after int64, limit int) ([]model.DirectMessage, error)
	// The resume overlap in a cluster (resume.go).
	ChatMessagesOverlap(ctx context.Context, room string, upTo int64, since time.Time, limit int) ([]model.ChatMessage, error)
	DirectMessagesOverlap(ctx context.Context, user string, upTo int64, since time.Time, limit int) ([]model.DirectMessage, error)
}

// Hub delivers messages to the live connections of users. Messages sent
// with SendToUsers and Broadcast are not stored (clients reload what they
// missed over REST); SendReliableToUsers stores one delivery per user that
// is sent again on their next connection until acked.
type Hub interface {
	SendToUsers(users []string, typ string, data any) error
	// SendToLocalUsers is SendToUsers for this instance's connections
	// only (presence transitions: every instance announces its own).
	SendToLocalUsers(users []string, typ string, data any) error
	SendReliableToUsers(ctx context.Context, users []string, typ string, data any) error
	Broadcast(typ string, data any) error
}

// Router is where the request handlers and the presence listener go: the
// hub.
type Router interface {
	Handle(typ string, min model.Role, fn protocol.HandlerFunc)
	HandleResume(stream string, fn protocol.Replayer)
	SetPresence(l protocol.PresenceListener)
}

// AlertChecker tells whether an alert exists, for chat messages that
// carry an alert_id.
type AlertChecker interface {
	AlertExists(ctx context.Context, id int64) (bool, error)
}

// Config tunes Rooms. Zero values take the defaults noted.
type Config struct {
	// OfflineGrace is how long a user may be without a connection before
	// their rooms hear user_left with reason "offline" (10s). A reconnect
	// within it sends nothing.
	OfflineGrace time.Duration
	// TypingInterval is the least time between two user_typing forwarded
	// for one user and room (2s).
	TypingInterval time.Duration
	// JoinHistory is how many messages a joined reply carries (50).
	JoinHistory int
	// MaxRoomsPerUser is how many rooms one user may have created and not
	// deleted (DefaultMaxRoomsPerUser).
	MaxRoomsPerUser int
	// CreateRate is how many rooms one user may create per minute after a
	// burst of CreateBurst (DefaultCreateRate, DefaultCreateBurst).
	CreateRate  float64
	CreateBurst int
	// PresenceEvery is how often an instance in a cluster publishes its
	// full online set, and PresenceTTL how long a peer's set counts
	// without news from it (DefaultPresenceEvery, DefaultPresenceTTL;
	// cluster.go).
	PresenceEvery time.Duration
	PresenceTTL   time.Duration
	// Now and AfterFunc are the clock, injected by tests (time.Now and
	// time.AfterFunc). AfterFunc returns the timer's Stop.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

func (c *Config) defaults() {
	if c.OfflineGrace <= 0 {
		c.OfflineGrace = DefaultOfflineGrace
	}
	if c.TypingInterval <= 0 {
		c.TypingInterval = 2 * time.Second
	}
	if c.JoinHistory <= 0 {
		c.JoinHistory = 50
	}
	if c.MaxRoomsPerUser <= 0 {
		c.MaxRoomsPerUser = DefaultMaxRoomsPerUser
	}
	if c.CreateRate <= 0 {
		c.CreateRate = DefaultCreateRate
	}
	if c.CreateBurst <= 0 {
		c.CreateBurst = DefaultCreateBurst
	}
	if c.PresenceEvery <= 0 {
		c.PresenceEvery = DefaultPresenceEvery
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = 3 * c.PresenceEvery
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
}

// DefaultOfflineGrace is the presence grace period when none is configured.
const DefaultOfflineGrace = 10 * time.Second

// Defaults of the room creation limits (WATCHROOM_ROOMS_PER_USER,
// WATCHROOM_ROOM_CREATE_RATE, WATCHROOM_ROOM_CREATE_BURST).
const (
	DefaultMaxRoomsPerUser = 20
	DefaultCreateRate      = 5 // per minute
	DefaultCreateBurst     = 5
)

// maxCreators bounds the table of per-user creation limiters; the least
// recently used one is evicted (a user evicted gets a fresh burst, which
// the per-user cap still bounds).
const maxCreators = 10000

// Limits of the history request and the REST route.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 100
)

// maxPresenceQueue bounds the presence events waiting for Run; past it
// events are dropped and counted (Run has stopped or is far behind).
const maxPresenceQueue = 100_000

// Rooms owns chat rooms, their messages, presence and direct messages.
// Create it with New; it is safe for concurrent use.
type Rooms struct {
	cfg    Config
	st     Store
	hub    Hub
	alerts AlertChecker
	log    *slog.Logger
	m      *metrics

	// mu guards online, local, peers, the cluster fields and events. It
	// is taken by the hub's presence callbacks, with the hub's lock held:
	// nothing holding mu may call the hub.
	mu     sync.Mutex
	online map[string]struct{} // online anywhere: local and every peer's (cluster.go)
	local  map[string]struct{} // online on this instance
	peers  map[string]*peer    // other instances' sets, by instance id
	events []presenceEvent
	wake   chan struct{} // one pending wake-up for Run

	// Set by SetCluster; nil cluster: a single instance.
	cluster    Cluster
	origin     string
	run        string
	seq        uint64    // of the last PresenceUpdate published
	quietUntil time.Time // a peer's first set heard before this is not news
	peerLog    rate.Sometimes

	typingMu sync.Mutex
	typing   map[typingKey]time.Time // last user_typing forwarded

	// createMu guards creators and orders "count, then create" of one
	// user's rooms on this instance, so that concurrent create_room
	// requests cannot pass the cap together. Held across two queries; only
	// create_room takes it.
	createMu sync.Mutex
	creators *simplelru.LRU[string, *rate.Limiter]

	// postMu guards posting: the chat messages queued per room while a
	// batch of the room is committed (post.go). A room is a key while one
	// handler commits its batch; one batch at a time per room keeps "store,
	// then fan out" in id order on this instance.
	postMu  sync.Mutex
	posting map[string][]*chatPost

	// members is the in-memory copy of room memberships (members.go).
	members *members
	// onlineSorted caches onlineUsers' answer; nil when online changed
	// since. Guarded by mu.
	onlineSorted []string
}

type typingKey struct{ user, room string }

// New returns Rooms over st delivering through h. alerts may be nil: chat
// messages with an alert_id are then refused. reg receives the metrics.
func New(cfg Config, st Store, h Hub, alerts AlertChecker, reg prometheus.Registerer, log *slog.Logger) *Rooms {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creators, _ := simplelru.NewLRU[string, *rate.Limiter](maxCreators, nil) // fails only for a size < 1
	return &Rooms{
		cfg: cfg, st: st, hub: h, alerts: alerts, log: log, m: newMetrics(reg),
		online:   map[string]struct{}{},
		local:    map[string]struct{}{},
		peers:    map[string]*peer{},
		wake:     make(chan struct{}, 1),
		typing:   map[typingKey]time.Time{},
		creators: creators,
		members:  newMembers(),
		posting:  map[string][]*chatPost{},
		peerLog:  rate.Sometimes{First: 1, Interval: time.Second},
	}
}

// Register installs the request handlers and the presence listener on rt.
// Call it once, before the hub serves its first connection.
func (r *Rooms) Register(rt Router) {
	rt.Handle("create_room", model.RoleAnalyst, r.createRoom)
	rt.Handle("join_room", model.RoleViewer, r.joinRoom)
	rt.Handle("leave_room", model.RoleViewer, r.leaveRoom)
	rt.Handle("list_rooms", model.RoleViewer, r.listRooms)
	rt.Handle("chat_message", model.RoleAnalyst, r.chatMessage)
	rt.Handle("typing", model.RoleAnalyst, r.typingRequest)
	rt.Handle("history", model.RoleViewer, r.history)
	rt.Handle("direct_message", model.RoleAnalyst, r.directMessage)
	rt.Handle("delete_room", model.RoleAdmin, r.deleteRoom)
	rt.HandleResume("rooms", r.replayRooms)
	rt.HandleResume("direct", r.replayDirect)
	rt.SetPresence(r)
}

// PostReliable delivers {type, id, data} as an acked message to every
// member of room online now. Members offline catch up from storage over
// REST, not from this message.
func (r *Rooms) PostReliable(ctx context.Context, room, typ string, data any) error {
	rm, err := r.room(ctx, room)
	if err != nil {
		return fmt.Errorf("rooms: post %s to %s: %w", typ, room, err)
	}
	users, err := r.onlineMembers(ctx, rm)
	if err != nil {
		return fmt.Errorf("rooms: post %s to %s: %w", typ, room, err)
	}
	if err := r.hub.SendReliableToUsers(ctx, users, typ, data); err != nil {
		return fmt.Errorf("rooms: post %s to %s: %w", typ, room, err)
	}
	return nil
}

// ListRooms returns every room with its member and online counts, and
// whether user is a member.
func (r *Rooms) ListRooms(ctx context.Context, user string) ([]model.RoomInfo, error) {
	return r.st.RoomInfos(ctx, user, r.onlineUsers())
}

// Messages returns up to limit messages of room with ids below before (the
// newest when before is 0), oldest first. Rooms are public: anyone logged in
// may read them, members or not. An unknown room is an error matching
// model.ErrNotFound.
func (r *Rooms) Messages(ctx context.Context, room string, before int64, limit int) ([]model.ChatMessage, error) {
	if _, err := r.room(ctx, room); err != nil {
		return nil, err
	}
	return r.st.ChatMessages(ctx, room, before, limit)
}

// room looks up a room. general and alerts always exist and cannot be
// deleted, so they need no query: alerts are posted on the ingest path.
func (r *Rooms) room(ctx context.Context, name string) (model.Room, error) {
	switch name {
	case model.RoomGeneral:
		return model.Room{Name: name, Kind: model.RoomKindChat, Fixed: true}, nil
	case model.RoomAlerts:
		return model.Room{Name: name, Kind: model.RoomKindAlerts, Fixed: true}, nil
	}
	rm, _, err := r.st.Membership(ctx, name, "")
	return rm, err
}

// onlineMembers returns the members of rm with a live connection on any
// instance (cluster.go), sorted. Every user is a member of a fixed room. The slice may
// be shared: callers must not modify it (append copies: its capacity is
// its length).
func (r *Rooms) onlineMembers(ctx context.Context, rm model.Room) ([]string, error) {
	online := r.onlineUsers()
	if rm.Fixed {
		return online, nil
	}
	mem, err := r.members.get(ctx, r.st, rm.Name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, min(len(online), len(mem.users)))
	for _, u := range online {
		if _, ok := mem.users[u]; ok {
			out = append(out, u)
		}
	}
	return slices.Clip(out), nil
}

// chatMembership answers whether user may post in room from memory (the
// fixed rooms, then the member copy), loading the room on a miss.
func (r *Rooms) chatMembership(ctx context.Context, room, user string) (model.Room, bool, error) {
	if room == model.RoomGeneral || room == model.RoomAlerts {
		rm, err := r.room(ctx, room)
		return rm, true, err
	}
	mem, err := r.members.get(ctx, r.st, room)
	if r.isNotFound(err) {
		return model.Room{}, false, r.reject(reasonUnknownRoom, protocol.CodeNotFound, "no room %q", room)
	}
	if err != nil {
		return model.Room{}, false, err
	}
	_, ok := mem.users[user]
	return mem.room, ok, nil
}

// chatMember returns room if user may post in it (chatMembership), and
// otherwise the client's not_found or forbidden.
func (r *Rooms) chatMember(ctx context.Context, room, user string) (model.Room, error) {
	rm, member, err := r.chatMembership(ctx, room, user)
	if err != nil {
		return model.Room{}, err
	}
	if !member {
		return model.Room{}, r.reject(reasonNotMember, protocol.CodeForbidden, "you are not a member of %q; join_room first", room)
	}
	return rm, nil
}

// onlineUsers returns the users with a live connection on any instance,
// sorted. The slice
// is shared until the online set changes: callers must not modify it
// (append copies: its capacity is its length).
func (r *Rooms) onlineUsers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onlineSorted == nil {
		out := make([]string, 0, len(r.online))
		for u := range r.online {
			out = append(out, u)
		}
		slices.Sort(out)
		r.onlineSorted = slices.Clip(out)
	}
	return r.onlineSorted
}

func (r *Rooms) isNotFound(err error) bool { return errors.Is(err, model.ErrNotFound) }

func without(users []string, user string) []string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		if u != user {
			out = append(out, u)
		}
	}
	return out
}
