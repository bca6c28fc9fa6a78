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
// online on this instance, the running offline grace timers, the typing
// throttle, and a copy of each room's members (members.go), loaded from
// PostgreSQL when a room is first needed and updated by this instance's
// join_room, leave_room and delete_room after the store committed them.
// chat_message reads membership and online members from memory: its only
// query is the insert, and the fan-out follows the commit at once.
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
// requester sees the fan-out before the reply. chat_message holds the
// room's lock (striped, one of 64) from insert to fan-out, so this
// instance delivers a room's messages in id order; ids themselves are
// ordered by the database (the room row's counter), not by this lock.
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
// Run is the one goroutine that turns presence events into user_joined /
// user_left notifications; it owns the grace timers. The timers' callbacks
// only queue an event. The typing throttle has its own lock.
//
// # Several instances
//
// Ids, memberships and history are already shared through PostgreSQL,
// which stays the source of truth; but the member copy in memory does not
// see another instance's join_room, leave_room or delete_room (a user who
// left there may still post here until this instance restarts). Crossing
// instances needs those changes on the backplane too, or a reload.
// What would have to cross instances, over a backplane behind the same
// Hub interface (e.g. an MQTT topic per room, or LISTEN/NOTIFY):
//   - the fan-out of chat_message, user_joined, user_left, user_typing,
//     room_created and room_deleted (SendToUsers and Broadcast reach this
//     instance's connections only);
//   - the room creation rate, which is per instance (the cap of rooms per
//     user is counted in PostgreSQL, but two instances may each let one
//     more through at once);
//   - presence: the online set is per instance, so "online" and the
//     user_left/"offline" decision would need a shared view (a presence
//     message per first/last connection, or heartbeat rows with expiry),
//     with the grace timer run where the last connection closed;
//   - live delivery of direct messages and alerts to connections on other
//     instances (the deliveries table is shared, so they already arrive on
//     the recipient's next connection);
//   - the typing throttle, which would then allow one notice per interval
//     per instance, acceptable as is.
package rooms
