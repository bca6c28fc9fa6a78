// Package mqtttest starts a private Mosquitto broker for one test, on a free
// loopback port, with persistence in a temporary directory and the in-flight
// and queue limits Watchroom documents for production (Mosquitto's defaults
// drop QoS 1 messages silently under load). The broker can be stopped and
// started again on the same port to test restarts; it is ended by PID when
// the test ends.
package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

const howToInstall = "install Mosquitto with `apt-get install -y mosquitto` (or `make services`); " +
	"tests start their own broker from that binary on a free port"

// Broker is a Mosquitto process owned by one test.
type Broker struct {
	tb   testing.TB
	bin  string
	conf string
	Port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a broker and registers its end with tb.Cleanup.
func Start(tb testing.TB) *Broker {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		tb.Fatalf("mqtttest: mosquitto binary not found: %v\n%s", err, howToInstall)
	}
	dir := tb.TempDir()
	port := FreePort(tb)
	conf := filepath.Join(dir, "mosquitto.conf")
	// Run as root, Mosquitto switches to user "mosquitto", which cannot
	// write to the test's temporary directory: persistence would silently
	// not work and restarts would lose sessions. Stay the current user.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root\n"
	}
	cfg := fmt.Sprintf(`%slistener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1
max_inflight_messages 1000
max_queued_messages 100000
set_tcp_nodelay true
log_dest file %s/mosquitto.log
`, user, port, dir, dir)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		tb.Fatalf("mqtttest: write config: %v", err)
	}
	b := &Broker{tb: tb, bin: bin, conf: conf, Port: port}
	b.StartAgain()
	tb.Cleanup(b.Stop)
	return b
}

// URL is the broker's address in the form Watchroom's configuration takes.
func (b *Broker) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.Port) }

// Log returns what the broker has logged so far (Mosquitto's default
// log types: errors, warnings, notices, information), e.g. to wait until
// it has noticed a client's connection closing.
func (b *Broker) Log() string {
	out, err := os.ReadFile(filepath.Join(filepath.Dir(b.conf), "mosquitto.log"))
	if err != nil {
		return ""
	}
	return string(out)
}

// Addr is host:port.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.Port) }

// StartAgain starts the broker process if it is not running and waits until
// it accepts connections.
func (b *Broker) StartAgain() {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.tb.Fatalf("mqtttest: start mosquitto: %v\n%s", err, howToInstall)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.tb.Fatalf("mqtttest: mosquitto did not listen on %s within 10s: %v", b.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the broker gracefully (SIGTERM, so it saves its persistent
// sessions) and waits for it. It is safe to call more than once.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	b.cmd = nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mqtttest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
