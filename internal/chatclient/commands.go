package chatclient

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/watchroom/watchroom/internal/model"
)

// Plain data types of the protocol, shared with the server.
type (
	Alert       = model.Alert
	ChatMessage = model.ChatMessage
	DirectMsg   = model.DirectMessage
)

// Command is one parsed input line.
type Command struct {
	Name string // "say" for a line that is not a command
	Arg  string // room, user or alert id
	Text string // message text or note
	ID   int64  // alert id of /ack and /resolve
}

// helpText is what /help shows, one command a line.
var helpText = []string{
	"/join ROOM          join a room and show it (or switch to it)",
	"/create ROOM        create a room and join it",
	"/leave [ROOM]       leave a room (default: the current one)",
	"/rooms              reload the room list with member counts",
	"/msg USER [TEXT]    direct message; without TEXT, open the conversation",
	"/ack ID             acknowledge alert ID",
	"/resolve ID [NOTE]  resolve alert ID with an optional note",
	"/history            load older messages of the current room (also PgUp at the top)",
	"/help               this list",
	"/quit               leave watchroom chat (also Ctrl+C)",
	"Keys: PgUp/PgDn scroll, Tab next room, Esc back to the room from a DM",
}

// ParseCommand parses an input line. A line not starting with '/' (or
// starting with "//", which sends the rest with one '/') is a message.
func ParseCommand(line string) (Command, error) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		return Command{Name: "say", Text: strings.TrimPrefix(line, "/")}, nil
	}
	name, rest, _ := strings.Cut(line[1:], " ")
	rest = strings.TrimSpace(rest)
	first, tail, _ := strings.Cut(rest, " ")
	tail = strings.TrimSpace(tail)
	c := Command{Name: strings.ToLower(name)}
	switch c.Name {
	case "join", "j", "create":
		if c.Name == "j" {
			c.Name = "join"
		}
		if first == "" || tail != "" {
			return c, fmt.Errorf("usage: /%s ROOM", c.Name)
		}
		c.Arg = strings.TrimPrefix(first, "#")
	case "leave", "part":
		c.Name = "leave"
		c.Arg = strings.TrimPrefix(first, "#")
	case "msg", "dm":
		c.Name = "msg"
		if first == "" {
			return c, fmt.Errorf("usage: /msg USER [TEXT]")
		}
		c.Arg, c.Text = strings.TrimPrefix(first, "@"), tail
	case "ack", "resolve":
		id, err := strconv.ParseInt(strings.TrimPrefix(first, "#"), 10, 64)
		if err != nil || id <= 0 || (c.Name == "ack" && tail != "") {
			if c.Name == "ack" {
				return c, fmt.Errorf("usage: /ack ID (the alert's number)")
			}
			return c, fmt.Errorf("usage: /resolve ID [NOTE]")
		}
		c.ID, c.Text = id, tail
	case "rooms", "help", "quit", "q", "exit", "history":
		if c.Name == "q" || c.Name == "exit" {
			c.Name = "quit"
		}
		if rest != "" {
			return c, fmt.Errorf("usage: /%s", c.Name)
		}
	default:
		return c, fmt.Errorf("unknown command /%s; /help lists them", name)
	}
	return c, nil
}
