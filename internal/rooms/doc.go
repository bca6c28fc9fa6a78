// Package rooms owns chat: rooms and their members, chat messages and
// their history, typing notices, presence (who is online, who came and
// went) and direct messages between users. It serves the /ws requests
// create_room, join_room, leave_room, list_rooms, chat_message, typing,
// history, direct_message and delete_room (Register puts them on the hub),
// the room queries of the REST API (ListRooms, Messages), and
// PostReliable, through which the alerts package posts to room "alerts".
//
// Rooms never touch sockets: everything goes out through the Hub
// interface. Everything that must survive a restart is in PostgreSQL
// (rooms, memberships, messages; undelivered direct messages in the hub's
// deliveries outbox). In memory there is only what may be lost: who is
// online (here and, in a cluster, elsewhere), the running offline grace
// timers, the typing throttle, and a copy of each room's members
// (members.go), loaded from PostgreSQL when a room is first needed,
// updated by this instance's join_room, leave_room and delete_room after
// the store committed them, and dropped on another instance's.
// chat_message reads membership and online members from memory: its only
// query is the insert, group-committed per room (post.go), and the fan-out
// follows the commit at once.
//
// Rooms "general" (chat) and "alerts" (alerts) always exist and cannot be
// left or deleted; every user is a member of both without a stored
// membership. Rooms are public: anyone logged in may list them, read their
// messages and join them; membership decides who receives a room's live
// messages and who may post (analyst and above) or send typing notices.
//
// # Goroutines and locks
//
// Request handlers run on the reader goroutine of the requesting
// connection, any number at once. Each validates, writes to the store,
// fans out through the hub, and only then returns its reply, so the
// requester sees the fan-out before the reply. chat_message queues its
// message in the room's queue (postMu guards the queues) and waits; one
// handler at a time per room commits what is queued in one statement and
// fans it out in id order, then hands the next batch to the first message
// queued behind it (post.go). So this instance delivers a room's messages
// in id order; ids themselves are ordered by the database (the room row's
// counter), not by the queue. No lock is held while a batch commits.
//
// create_room holds createMu from the creator's rate check through the
// count of their rooms to the insert, so concurrent requests cannot pass
// the per-user cap together; only create_room takes it. A room change is
// broadcast as one small room_created or room_deleted, never the list.
//
// Online and Offline (protocol.PresenceListener) are called by the hub with its
// lock held: they take only Rooms.mu, update the online set and queue an
// event, never block and never call the hub. Nothing may call the hub
// while holding Rooms.mu (the hub's lock is taken before it, never after).
// In a cluster they also hand the change to Cluster.PublishPresence,
// which must not block either; PeerPresence and PeerRoomChanged, called
// by the transport's receiver, take Rooms.mu (or the members' lock) only.
// Run is the one goroutine that turns presence events into user_joined /
// user_left notifications; it owns the grace timers and, in a cluster,
// the ticker of the full set and of the peers' expiry. The timers' callbacks
// only queue an event. The typing throttle has its own lock.
//
// # Several instances
//
// Ids, memberships and history are shared through PostgreSQL, which stays
// the source of truth. With a cluster (SetCluster, cluster.go):
//   - messages reach other instances through the hub, which relays what
//     SendToUsers, SendReliableToUsers and Broadcast send; recipient lists
//     are every intended user, the members online on any instance;
//   - presence: each instance publishes its own online set (deltas, a full
//     set every PresenceEvery, gone at shutdown or by its last will); every
//     instance merges them, runs the grace on the merged view and
//     announces transitions to its own connections only
//     (SendToLocalUsers);
//   - room changes drop the other instances' member copies;
//   - a resume replays an overlap below the cursor (resume.go).
//
// Still per instance: the room creation rate (the cap of rooms per user is
// counted in PostgreSQL, but two instances may each let one more through
// at once) and the typing throttle (one notice per interval per instance).
package rooms
