package broker

import (
	"fmt"
	"io"
	"strings"
)

// PasswdEntry is one line of a Mosquitto password_file.
type PasswdEntry struct {
	User string
	Hash string // a "$7$" hash (HashSecret)
}

// WritePasswd writes a Mosquitto password_file: one "user:hash" line per
// entry. User names with ':' or a line break would corrupt the file and are
// refused; so are duplicates (Mosquitto would keep only one of them).
func WritePasswd(w io.Writer, entries []PasswdEntry) error {
	seen := make(map[string]bool, len(entries))
	var b strings.Builder
	for _, e := range entries {
		if e.User == "" || strings.ContainsAny(e.User, ":\r\n") || strings.ContainsAny(e.Hash, ":\r\n") {
			return fmt.Errorf("broker: password file: unusable user name %q", e.User)
		}
		if seen[e.User] {
			return fmt.Errorf("broker: password file: user %q twice (a device may not be named like Watchroom's own users)", e.User)
		}
		seen[e.User] = true
		b.WriteString(e.User + ":" + e.Hash + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteACL writes a Mosquitto acl_file with the policy of AuthConfig:
// anonymous clients (allowed only when mosquitto.conf says
// allow_anonymous true) may publish readings; serviceUser reads and
// writes everything; GatewayUser acts for every device when withGateway;
// every other user is a device whose user name is its id, confined to its
// own topics by the `pattern` lines (%u is the user name).
func WriteACL(w io.Writer, serviceUser string, withGateway bool) error {
	if serviceUser == "" || strings.ContainsAny(serviceUser, "\r\n") {
		return fmt.Errorf("broker: acl file: unusable service user %q", serviceUser)
	}
	var b strings.Builder
	b.WriteString(`# Written by ` + "`watchroom device export-mosquitto`" + `; changes here are lost on the
# next export. See docs/mqtt.md.

# Anonymous clients (only with allow_anonymous true): readings, nothing else.
topic write sensors/#

# Watchroom itself: ingest reads every reading, the command client writes
# commands and reads responses; $SYS (which # does not cover) is for the
# container's health check.
user ` + serviceUser + `
topic readwrite #
topic read $SYS/#
`)
	if withGateway {
		b.WriteString(`
# The gateway acts for many devices (the simulator, a protocol gateway).
user ` + GatewayUser + `
topic write sensors/#
topic write devices/+/responses
topic read devices/+/commands
`)
	}
	b.WriteString(`
# Every device, user name = device id: its own readings, commands and
# responses only.
pattern write sensors/%u
pattern write sensors/%u/#
pattern write devices/%u/responses
pattern read devices/%u/commands
`)
	_, err := io.WriteString(w, b.String())
	return err
}
