package mqtttest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartStopStartAgain(t *testing.T) {
	b := Start(t)
	dial := func() error {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("broker not listening after Start: %v", err)
	}
	b.Stop()
	if err := dial(); err == nil {
		t.Fatalf("broker still listening after Stop")
	}
	b.StartAgain()
	if err := dial(); err != nil {
		t.Fatalf("broker not listening after StartAgain: %v", err)
	}
}

// A persistent session and its queued QoS 1 message must survive a
// broker restart: that is what restart tests rely on.
func TestPersistenceSurvivesRestart(t *testing.T) {
	b := Start(t)
	b.Stop()
	b.StartAgain()
	b.Stop()
	log, err := os.ReadFile(filepath.Join(filepath.Dir(b.conf), "mosquitto.log"))
	if err != nil {
		t.Fatalf("read broker log: %v", err)
	}
	if strings.Contains(string(log), "Error") {
		t.Fatalf("broker log has errors:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.conf), "mosquitto.db")); err != nil {
		t.Fatalf("no persistence file after a graceful stop: %v", err)
	}
}
