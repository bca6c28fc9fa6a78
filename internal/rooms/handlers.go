package rooms

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// The request handlers run on the reader goroutine of the requesting
// connection (see the hub). Each validates, stores, fans out, then returns
// its reply, so the requester sees the fan-out messages before the reply.

// Wire shapes of the notifications.
type (
	roomUser struct {
		Room   string `json:"room"`
		User   string `json:"user"`
		Reason string `json:"reason,omitempty"`
	}
	roomOnly struct {
		Room string `json:"room"`
	}
	member struct {
		User   string `json:"user"`
		Online bool   `json:"online"`
	}
	roomList struct {
		Rooms []model.RoomInfo `json:"rooms"`
	}
)

// CodeLimitReached is the error code of a create_room past the per-user
// room cap.
const CodeLimitReached = "limit_reached"

// Reasons of user_joined and user_left.
const (
	reasonOnline  = "online"  // user_joined: first connection after being away
	reasonOffline = "offline" // user_left: last connection closed, grace over
	reasonLeft    = "left"    // user_left: leave_room
)

// decode unmarshals the request's data into v; shape is the expected form
// for the error message.
func (r *Rooms) decode(req protocol.Request, v any, shape string) error {
	if len(bytes.TrimSpace(req.Data)) == 0 || json.Unmarshal(req.Data, v) != nil {
		return r.reject(reasonBadData, protocol.CodeBadRequest, "%s: data must be %s", req.Type, shape)
	}
	return nil
}

// reject counts a refused request and returns the error the client gets.
func (r *Rooms) reject(reason, code, format string, args ...any) error {
	r.m.rejected.WithLabelValues(reason).Inc()
	e := protocol.Errorf(code, format, args...)
	if s := r.m.rejectLog[reason]; s != nil {
		s.Do(func() { r.log.Info("request refused", "reason", reason, "message", e.Message) })
	}
	return e
}

func (r *Rooms) checkRoomName(name string) error {
	if err := model.ValidRoomName(name); err != nil {
		return r.reject(reasonInvalidRoom, protocol.CodeBadRequest, "invalid room name %q: %v", model.Truncate(name, 80), err)
	}
	return nil
}

// checkContent trims content and checks its length in characters.
func (r *Rooms) checkContent(content string) (string, error) {
	content = strings.TrimSpace(content)
	n := utf8.RuneCountInString(content)
	switch {
	case n == 0:
		return "", r.reject(reasonEmptyContent, protocol.CodeBadRequest, "content is empty; send 1 to %d characters", model.MaxChatContent)
	case n > model.MaxChatContent:
		return "", r.reject(reasonContentTooLong, protocol.CodeBadRequest, "content is %d characters long; at most %d are allowed", n, model.MaxChatContent)
	case strings.ContainsRune(content, 0):
		// PostgreSQL text cannot hold NUL.
		return "", r.reject(reasonBadContent, protocol.CodeBadRequest, "content must not contain NUL characters")
	}
	return content, nil
}

// decodeRoom decodes the request's data into v (shape describes it in the
// error) and checks the room name it names.
func (r *Rooms) decodeRoom(req protocol.Request, v any, room *string, shape string) error {
	if err := r.decode(req, v, shape); err != nil {
		return err
	}
	return r.checkRoomName(*room)
}

// changeableRoom decodes a {"room":...} request for a room that may be
// left or deleted: it must exist and not be one of the fixed rooms
// (refusal, with the room's name, says why not).
func (r *Rooms) changeableRoom(ctx context.Context, req protocol.Request, refusal string) (model.Room, error) {
	var d roomOnly
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name"}`); err != nil {
		return model.Room{}, err
	}
	rm, _, err := r.membership(ctx, d.Room, req.User)
	if err != nil {
		return model.Room{}, err
	}
	if rm.Fixed {
		return model.Room{}, r.reject(reasonFixedRoom, protocol.CodeBadRequest, refusal, d.Room)
	}
	return rm, nil
}

// membership looks up room and whether user is in it; an unknown room is
// the client's not_found.
func (r *Rooms) membership(ctx context.Context, room, user string) (model.Room, bool, error) {
	rm, member, err := r.st.Membership(ctx, room, user)
	if r.isNotFound(err) {
		return model.Room{}, false, r.reject(reasonUnknownRoom, protocol.CodeNotFound, "no room %q", room)
	}
	return rm, member, err
}

func (r *Rooms) createRoom(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d struct {
		Room string `json:"room"`
		Kind string `json:"kind"`
	}
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name","kind":"chat"|"alerts"}`); err != nil {
		return protocol.Reply{}, err
	}
	if d.Kind == "" {
		d.Kind = model.RoomKindChat
	}
	if !model.ValidRoomKind(d.Kind) {
		return protocol.Reply{}, r.reject(reasonBadKind, protocol.CodeBadRequest, "unknown room kind %q (want chat or alerts)", model.Truncate(d.Kind, 32))
	}
	rm, created, err := r.createLimited(ctx, d.Room, d.Kind, req.User)
	if err != nil {
		return protocol.Reply{}, err
	}
	if !created {
		return protocol.Reply{}, r.reject(reasonRoomTaken, protocol.CodeConflict, "room %q already exists; join it or pick another name", d.Room)
	}
	r.m.roomsCreated.Inc()
	r.roomChanged(rm.Name)
	// The creator is its one member, and online: it is asking.
	r.broadcastRoomChange("room_created", model.RoomInfo{Room: rm, Members: 1, Online: 1})
	return protocol.Reply{Type: "created", Data: rm}, nil
}

// createLimited creates a room within the creator's limits: the creation
// rate (a token bucket per user) and the number of rooms they have
// created that still exist. Refusals are counted and say which limit and
// when to retry.
func (r *Rooms) createLimited(ctx context.Context, name, kind, user string) (model.Room, bool, error) {
	now := r.cfg.Now()
	r.createMu.Lock()
	defer r.createMu.Unlock()
	lim, ok := r.creators.Get(user)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(r.cfg.CreateRate/60), r.cfg.CreateBurst)
		r.creators.Add(user, lim)
	}
	res := lim.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return model.Room{}, false, r.reject(reasonCreateRate, protocol.CodeRateLimited,
			"you may create %g rooms a minute; retry in %d s", r.cfg.CreateRate, int(max(1, (wait+time.Second-1)/time.Second)))
	}
	n, err := r.st.RoomsCreatedBy(ctx, user)
	if err != nil {
		return model.Room{}, false, err
	}
	if n >= r.cfg.MaxRoomsPerUser {
		res.CancelAt(now) // nothing was created
		return model.Room{}, false, r.reject(reasonTooManyRooms, CodeLimitReached,
			"you have created %d rooms, the most one user may have; ask an admin to delete one", n)
	}
	return r.st.CreateRoom(ctx, name, kind, user)
}

// broadcastRoomChange tells every connection of one room created or
// deleted: one small message per change, never the whole list (a flood of
// changes would otherwise send every connection the list each time).
// Clients load the full list over REST or list_rooms. A failure is
// counted and logged, not returned: the change itself is done.
func (r *Rooms) broadcastRoomChange(typ string, data any) {
	if err := r.hub.Broadcast(typ, data); err != nil {
		r.m.dropped.WithLabelValues(dropRoomList).Inc()
		r.log.Warn("room change not broadcast", "type", typ, "err", err)
	}
}

func (r *Rooms) joinRoom(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d roomOnly
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name"}`); err != nil {
		return protocol.Reply{}, err
	}
	joined, err := r.st.JoinRoom(ctx, d.Room, req.User)
	if r.isNotFound(err) {
		return protocol.Reply{}, r.reject(reasonUnknownRoom, protocol.CodeNotFound, "no room %q", d.Room)
	}
	if err != nil {
		return protocol.Reply{}, err
	}
	r.members.set(d.Room, req.User, true)
	if joined {
		r.roomChanged(d.Room)
	}
	names, err := r.st.RoomMembers(ctx, d.Room)
	if err != nil {
		return protocol.Reply{}, err
	}
	history, err := r.st.ChatMessages(ctx, d.Room, 0, r.cfg.JoinHistory)
	if err != nil {
		return protocol.Reply{}, err
	}
	online := r.onlineUsers()
	members := make([]member, len(names))
	var notify []string
	for i, u := range names {
		members[i] = member{User: u, Online: contains(online, u)}
		if members[i].Online && u != req.User {
			notify = append(notify, u)
		}
	}
	if joined {
		r.send(notify, "user_joined", roomUser{Room: d.Room, User: req.User})
	}
	if history == nil {
		history = []model.ChatMessage{}
	}
	return protocol.Reply{Type: "joined", Data: map[string]any{"room": d.Room, "members": members, "history": history}}, nil
}

func (r *Rooms) leaveRoom(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rm, err := r.changeableRoom(ctx, req, "everyone is a member of %q; it cannot be left")
	if err != nil {
		return protocol.Reply{}, err
	}
	left, err := r.st.LeaveRoom(ctx, rm.Name, req.User)
	if err != nil {
		return protocol.Reply{}, err
	}
	r.members.set(rm.Name, req.User, false)
	if left {
		r.roomChanged(rm.Name)
		others, err := r.onlineMembers(ctx, rm)
		if err != nil {
			return protocol.Reply{}, err
		}
		r.send(without(others, req.User), "user_left", roomUser{Room: rm.Name, User: req.User, Reason: reasonLeft})
	}
	return protocol.Reply{Type: "left", Data: roomOnly{Room: rm.Name}}, nil
}

func (r *Rooms) listRooms(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	infos, err := r.ListRooms(ctx, req.User)
	if err != nil {
		return protocol.Reply{}, err
	}
	return protocol.Reply{Type: "room_list", Data: roomList{Rooms: infos}}, nil
}

func (r *Rooms) chatMessage(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d struct {
		Room    string          `json:"room"`
		Content string          `json:"content"`
		AlertID json.RawMessage `json:"alert_id"`
	}
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name","content":"text","alert_id":optional number}`); err != nil {
		return protocol.Reply{}, err
	}
	content, err := r.checkContent(d.Content)
	if err != nil {
		return protocol.Reply{}, err
	}
	alertID, err := r.alertID(ctx, d.AlertID)
	if err != nil {
		return protocol.Reply{}, err
	}
	rm, err := r.chatMember(ctx, d.Room, req.User)
	if err != nil {
		return protocol.Reply{}, err
	}
	msg, err := r.post(ctx, rm, model.ChatMessage{Room: d.Room, User: req.User, Content: content, AlertID: alertID})
	if err != nil {
		return protocol.Reply{}, err
	}
	return protocol.Reply{Type: "chat_message_sent", Data: map[string]any{"room": msg.Room, "id": msg.ID, "ts": protocol.FormatTime(msg.TS)}}, nil
}

// alertID parses and checks an optional alert_id: a positive integer, as
// a JSON number or a string of digits; null or absent means none.
func (r *Rooms) alertID(ctx context.Context, raw json.RawMessage) (*int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			s = ""
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return nil, r.reject(reasonBadData, protocol.CodeBadRequest, "alert_id must be a positive integer, not %s", model.Truncate(string(raw), 32))
	}
	if r.alerts == nil {
		return nil, r.reject(reasonUnknownAlert, protocol.CodeBadRequest, "alert_id is not supported: alerts are not enabled on this server")
	}
	ok, err := r.alerts.AlertExists(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, r.reject(reasonUnknownAlert, protocol.CodeNotFound, "no alert %d", id)
	}
	return &id, nil
}

func (r *Rooms) typingRequest(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d roomOnly
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name"}`); err != nil {
		return protocol.Reply{}, err
	}
	rm, err := r.chatMember(ctx, d.Room, req.User)
	if err != nil {
		return protocol.Reply{}, err
	}
	forwarded := r.allowTyping(req.User, d.Room)
	if forwarded {
		others, err := r.onlineMembers(ctx, rm)
		if err != nil {
			return protocol.Reply{}, err
		}
		r.send(without(others, req.User), "user_typing", roomUser{Room: d.Room, User: req.User})
	} else {
		r.m.dropped.WithLabelValues(dropTypingThrottled).Inc()
	}
	if len(req.ID) == 0 {
		return protocol.Reply{}, nil // typing is fire-and-forget unless the client asks
	}
	return protocol.Reply{Type: "typing_sent", Data: map[string]any{"room": d.Room, "forwarded": forwarded}}, nil
}

// allowTyping reports whether a user_typing of user in room may be
// forwarded now, and if so records it.
func (r *Rooms) allowTyping(user, room string) bool {
	now := r.cfg.Now()
	k := typingKey{user, room}
	r.typingMu.Lock()
	defer r.typingMu.Unlock()
	if last, ok := r.typing[k]; ok && now.Sub(last) < r.cfg.TypingInterval {
		return false
	}
	if len(r.typing) >= 1024 {
		// Entries older than the interval throttle nothing: sweep them so
		// the map stays as small as the set of people typing now.
		for key, t := range r.typing {
			if now.Sub(t) >= r.cfg.TypingInterval {
				delete(r.typing, key)
			}
		}
	}
	r.typing[k] = now
	return true
}

func (r *Rooms) history(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d struct {
		Room   string `json:"room"`
		Before int64  `json:"before"`
		Limit  *int   `json:"limit"`
	}
	if err := r.decodeRoom(req, &d, &d.Room, `{"room":"name","before":id,"limit":1..100}`); err != nil {
		return protocol.Reply{}, err
	}
	limit := DefaultHistoryLimit
	if d.Limit != nil {
		limit = *d.Limit
	}
	if limit < 1 || limit > MaxHistoryLimit || d.Before < 0 {
		return protocol.Reply{}, r.reject(reasonBadData, protocol.CodeBadRequest, "limit must be 1 to %d and before a message id (0 or absent: the newest)", MaxHistoryLimit)
	}
	if _, _, err := r.membership(ctx, d.Room, req.User); err != nil {
		return protocol.Reply{}, err
	}
	msgs, err := r.st.ChatMessages(ctx, d.Room, d.Before, limit)
	if err != nil {
		return protocol.Reply{}, err
	}
	if msgs == nil {
		msgs = []model.ChatMessage{}
	}
	return protocol.Reply{Type: "history", Data: map[string]any{"room": d.Room, "messages": msgs}}, nil
}

func (r *Rooms) directMessage(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	var d struct {
		To      string `json:"to"`
		Content string `json:"content"`
	}
	if err := r.decode(req, &d, `{"to":"user","content":"text"}`); err != nil {
		return protocol.Reply{}, err
	}
	content, err := r.checkContent(d.Content)
	if err != nil {
		return protocol.Reply{}, err
	}
	if d.To == "" {
		return protocol.Reply{}, r.reject(reasonBadData, protocol.CodeBadRequest, `direct_message needs "to": the user to write to`)
	}
	if _, err := r.st.User(ctx, d.To); r.isNotFound(err) {
		return protocol.Reply{}, r.reject(reasonUnknownUser, protocol.CodeNotFound, "no user %q", model.Truncate(d.To, 80))
	} else if err != nil {
		return protocol.Reply{}, err
	}
	dm, err := r.st.InsertDirectMessage(ctx, model.DirectMessage{From: req.User, To: d.To, Content: content})
	if err != nil {
		return protocol.Reply{}, err
	}
	r.m.directMessages.Inc()
	users := []string{d.To}
	if d.To != req.User {
		users = append(users, req.User)
	}
	if err := r.hub.SendReliableToUsers(ctx, users, "direct_message", dm); err != nil {
		// Stored in direct_messages but not queued for delivery: tell the
		// sender it failed rather than leave the recipient unaware.
		return protocol.Reply{}, err
	}
	return protocol.Reply{Type: "direct_message_sent", Data: map[string]any{"id": dm.ID, "to": dm.To, "ts": protocol.FormatTime(dm.TS)}}, nil
}

func (r *Rooms) deleteRoom(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rm, err := r.changeableRoom(ctx, req, "room %q always exists; it cannot be deleted")
	if err != nil {
		return protocol.Reply{}, err
	}
	_, err = r.st.DeleteRoom(ctx, rm.Name)
	if r.isNotFound(err) { // deleted meanwhile by someone else
		return protocol.Reply{}, r.reject(reasonUnknownRoom, protocol.CodeNotFound, "no room %q", rm.Name)
	}
	if err != nil {
		return protocol.Reply{}, err
	}
	r.members.forget(rm.Name)
	r.roomChanged(rm.Name)
	r.m.roomsDeleted.Inc()
	// Everyone: members leave the room, the others drop it from their list.
	r.broadcastRoomChange("room_deleted", map[string]string{"room": rm.Name, "by": req.User})
	return protocol.Reply{Type: "deleted", Data: roomOnly{Room: rm.Name}}, nil
}

// send fans a message out to users' live connections; a failure (only an
// encoding error is possible) is counted and logged.
func (r *Rooms) send(users []string, typ string, data any) {
	if len(users) == 0 {
		return
	}
	if err := r.hub.SendToUsers(users, typ, data); err != nil {
		r.m.dropped.WithLabelValues(dropFanout).Inc()
		r.log.Error("fan-out failed", "type", typ, "err", err)
	}
}

// contains reports whether sorted, a sorted slice, holds s.
func contains(sorted []string, s string) bool {
	_, ok := slices.BinarySearch(sorted, s)
	return ok
}
