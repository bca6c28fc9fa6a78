package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/chatclient"
	"github.com/watchroom/watchroom/internal/model"
)

// tmuxTerm is a terminal the real `watchroom chat` binary runs in, driven
// the way a person would: keys in with send-keys, the screen out with
// capture-pane. Its tmux server is private to the test (its own socket).
type tmuxTerm struct {
	t      *testing.T
	sock   string
	name   string
	status string // startChat: where the exit status is written
}

func startTmux(t *testing.T, width, height int, command string) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed: run .ci/services (apt-get install tmux)")
	}
	tm := &tmuxTerm{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock"), name: "chat"}
	// remain-on-exit keeps the pane (and what a crash printed) readable.
	tm.run("new-session", "-d", "-s", tm.name, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), command,
		";", "set-option", "-t", tm.name, "remain-on-exit", "on")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screen at the end:\n%s", tm.screen())
		}
		_ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
	})
	return tm
}

func (tm *tmuxTerm) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tm *tmuxTerm) screen() string {
	out, _ := exec.Command("tmux", "-S", tm.sock, "capture-pane", "-p", "-t", tm.name).CombinedOutput()
	return string(out)
}

// typeLine types text literally, then Enter.
func (tm *tmuxTerm) typeLine(text string) {
	tm.t.Helper()
	tm.run("send-keys", "-t", tm.name, "-l", text)
	tm.run("send-keys", "-t", tm.name, "Enter")
}

// waitScreen polls the screen until it shows want, and returns it.
func (tm *tmuxTerm) waitScreen(want string, d time.Duration) string {
	tm.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := tm.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen did not show %q within %v:\n%s", want, d, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatClientInTmux runs `watchroom chat` against the real server:
// login, a slash command, a message from a browser-side client, a reply,
// an alert arriving and being acknowledged, a server restart survived
// with resume, and /quit.
func TestChatClientInTmux(t *testing.T) {
	e := alertsEnv(t)
	mustPutRules(t, e.srv.addr, e.token, "boiler-1",
		`{"rules":[{"metric":"temperature","kind":"threshold","min":10,"max":90}]}`)
	bin := childBinary(t)
	tm := startChat(t, bin, "--url", "http://"+e.srv.addr, "--user", "ann")

	// Login: the URL and user are filled in; the password is not echoed.
	tm.waitScreen("password", 15*time.Second)
	tm.typeLine("ann-password")
	s := tm.waitScreen("● online", 15*time.Second)
	if strings.Contains(s, "ann-password") {
		t.Fatalf("password on screen:\n%s", s)
	}
	tm.waitScreen("#general", 5*time.Second)

	// A slash command creates a room and shows it.
	tm.typeLine("/create ops-night")
	tm.waitScreen("room ops-night created", 10*time.Second)

	// A browser-side client joins and talks; the terminal shows it.
	bob := alertConnect(t, e.srv.addr, "bob", "bob-password")
	bob.c.send(map[string]any{"type": "join_room", "id": "j1", "data": map[string]string{"room": "ops-night"}})
	bob.waitFor(5*time.Second, "joined", func(m wsMsg) bool { return m.Type == "joined" })
	tm.waitScreen("bob joined", 10*time.Second)
	bob.c.send(map[string]any{"type": "chat_message", "id": "m1", "data": map[string]string{"room": "ops-night", "content": "boiler-1 looks hot"}})
	tm.waitScreen("bob: boiler-1 looks hot", 10*time.Second)

	// And what is typed in the terminal reaches the browser side.
	tm.typeLine("on it")
	bob.waitFor(10*time.Second, "ann's message", func(m wsMsg) bool {
		return m.Type == "chat_message" && strings.Contains(string(m.Data), `"content":"on it"`) && strings.Contains(string(m.Data), `"user":"ann"`)
	})

	// An alert arrives in the alerts pane and is acknowledged from it.
	// Three breaching readings: a threshold alert opens after the first
	// by default (docs/alerts.md); more do not hurt if that changes.
	pub := publisher(t, e.broker.URL())
	for i := range 3 {
		publish(t, pub, "sensors/boiler-1/temperature", fmt.Sprintf(`{"value": %g, "unit": "°C"}`, 97.5+float64(i)))
	}
	a, _ := bob.alert(15*time.Second, "opened", isAlert("boiler-1", model.AlertThreshold, model.AlertOpen))
	// The pane shows the alert as it is now: its severity may have risen
	// since the first message bob saw, so only id and series are matched.
	tm.waitScreen("boiler-1/temperature", 20*time.Second)
	tm.waitScreen(fmt.Sprintf("#%d ", a.ID), 20*time.Second)
	tm.typeLine(fmt.Sprintf("/ack %d", a.ID))
	tm.waitScreen("acknowledged by ann", 10*time.Second)
	bob.alert(10*time.Second, "acknowledged by ann", func(x model.Alert) bool {
		return x.ID == a.ID && x.State == model.AlertAcknowledged && x.AckedBy != nil && *x.AckedBy == "ann"
	})

	// The server restarts: the client says so, reconnects and resumes; a
	// message sent while it was away shows up.
	e.srv.stop()
	tm.waitScreen("reconnecting in", 10*time.Second)
	e.srv = startServer(t, e.srv.env)
	bob2 := alertConnect(t, e.srv.addr, "bob", "bob-password")
	bob2.c.send(map[string]any{"type": "chat_message", "id": "m2", "data": map[string]string{"room": "ops-night", "content": "back after the restart"}})
	bob2.waitFor(5*time.Second, "sent", func(m wsMsg) bool { return m.Type == "chat_message_sent" })
	tm.waitScreen("bob: back after the restart", 30*time.Second)
	tm.waitScreen("● online", 5*time.Second)
	tm.waitScreen("reconnected; caught up", 5*time.Second)

	// /help lists the commands; /quit ends the program.
	tm.typeLine("/help")
	tm.waitScreen("/resolve ID [NOTE]", 5*time.Second)
	tm.quit()
}

// startChat runs `watchroom chat` with args in a new terminal; the shell
// around it writes its exit status to a file for quit to read (tmux's own
// pane_dead_status was seen empty, and its last output lost, for a pane
// whose process had exited).
func startChat(t *testing.T, bin string, args ...string) *tmuxTerm {
	t.Helper()
	status := filepath.Join(t.TempDir(), "status")
	tm := startTmux(t, 100, 30, fmt.Sprintf("env NO_COLOR=1 %s chat %s; echo $? > %s", bin, strings.Join(args, " "), status))
	tm.status = status
	return tm
}

// quit types /quit and waits for the program to exit with status 0.
func (tm *tmuxTerm) quit() {
	tm.t.Helper()
	tm.typeLine("/quit")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(tm.status)
		if st := strings.TrimSpace(string(b)); err == nil && st != "" {
			if st != "0" {
				tm.t.Fatalf("chat exited with status %s", st)
			}
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("chat did not exit within 10s of /quit")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatTokenFileInTmux: with --token-file the first start asks for the
// password and saves the token (0600); the next start goes straight in;
// once the session is revoked the password is asked again; a token file
// others may read is refused with a message saying so.
func TestChatTokenFileInTmux(t *testing.T) {
	e := alertsEnv(t)
	bin := childBinary(t)
	path := filepath.Join(t.TempDir(), "watchroom-token")
	args := []string{"--url", "http://" + e.srv.addr, "--user", "ann", "--token-file", path}

	tm := startChat(t, bin, args...)
	tm.waitScreen("password", 15*time.Second)
	tm.typeLine("ann-password")
	tm.waitScreen("● online", 15*time.Second)
	tm.quit()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no token file after the login: %v", err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("token file mode %04o, want 0600", m)
	}

	// The next start needs no password (none is typed).
	tm = startChat(t, bin, args...)
	tm.waitScreen("● online", 15*time.Second)
	tm.quit()

	// Revoked: back to the password, with the reason.
	saved, err := chatclient.LoadToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if code := postJSONTo(t, e.srv.addr, "/api/logout", saved.Token, "", nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	tm = startChat(t, bin, args...)
	tm.waitScreen("saved token was not accepted", 15*time.Second)
	tm.typeLine("ann-password")
	tm.waitScreen("● online", 15*time.Second)
	tm.quit()

	// Readable by others: refused before anything is sent.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "chat", "--url", "http://"+e.srv.addr, "--token-file", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permissions 0644") || !strings.Contains(string(out), "0600") {
		t.Fatalf("a 0644 token file: %v\n%s", err, out)
	}
}
