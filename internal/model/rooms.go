package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Room kinds.
const (
	RoomKindChat   = "chat"
	RoomKindAlerts = "alerts"
)

// The rooms that always exist. Every user is a member of both; neither can
// be left or deleted.
const (
	RoomGeneral = "general" // kind chat
	RoomAlerts  = "alerts"  // kind alerts: where alerts are posted and discussed
)

// MaxRoomNameLen bounds room names.
const MaxRoomNameLen = 64

// MaxChatContent is the longest chat or direct message, in characters
// (Unicode code points) after trimming surrounding white space.
const MaxChatContent = 2000

// Room is a chat room.
type Room struct {
	Name      string    `json:"room"`
	Kind      string    `json:"kind"`
	Creator   string    `json:"creator"`
	CreatedAt time.Time `json:"created_at"`
	// Fixed rooms (general, alerts) cannot be deleted and have every user
	// as a member.
	Fixed bool `json:"fixed"`
}

// RoomInfo is a room with its member counts, as room lists show it.
type RoomInfo struct {
	Room
	Members int `json:"members"`
	Online  int `json:"online"`
	// Member tells whether the user who asked is a member; nil in lists
	// sent to everyone.
	Member *bool `json:"member,omitempty"`
}

// ChatMessage is one message of a room. ID increases within its room.
type ChatMessage struct {
	ID      int64     `json:"id"`
	Room    string    `json:"room"`
	User    string    `json:"user"`
	Content string    `json:"content"`
	AlertID *int64    `json:"alert_id,omitempty"`
	TS      time.Time `json:"ts"`
}

// DirectMessage is one message from one user to another.
type DirectMessage struct {
	ID      int64     `json:"id"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Content string    `json:"content"`
	TS      time.Time `json:"ts"`
}

// MarshalJSON writes ts the protocol's way, with milliseconds; the
// database keeps microseconds.
func (m ChatMessage) MarshalJSON() ([]byte, error) {
	type plain ChatMessage // without this method
	return json.Marshal(struct {
		plain
		TS string `json:"ts"` // shadows plain.TS
	}{plain(m), m.TS.UTC().Format(TimeFormat)})
}

// MarshalJSON writes ts with milliseconds, as ChatMessage does.
func (m DirectMessage) MarshalJSON() ([]byte, error) {
	type plain DirectMessage
	return json.Marshal(struct {
		plain
		TS string `json:"ts"`
	}{plain(m), m.TS.UTC().Format(TimeFormat)})
}

// ValidRoomKind reports whether k is a room kind.
func ValidRoomKind(k string) bool { return k == RoomKindChat || k == RoomKindAlerts }

// ValidRoomName reports whether s is a valid room name: 1 to 64 ASCII
// letters, digits, '-' and '_'.
func ValidRoomName(s string) error {
	if s == "" {
		return fmt.Errorf("must be 1 to %d characters", MaxRoomNameLen)
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("invalid character %q (allowed: letters, digits, '-', '_')", c)
		}
	}
	if len(s) > MaxRoomNameLen {
		return fmt.Errorf("must be 1 to %d characters, not %d", MaxRoomNameLen, len(s))
	}
	return nil
}
