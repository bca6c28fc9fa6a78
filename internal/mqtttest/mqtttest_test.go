package mqtttest

import (
	"net"
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
