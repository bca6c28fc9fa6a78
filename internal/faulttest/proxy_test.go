package faulttest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) (*lineConn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// roundTrip sends a line and waits up to d for its echo.
func (c *lineConn) roundTrip(line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	if len(got) > 0 {
		got = got[:len(got)-1]
	}
	return got, err
}

func TestProxyPassCutHang(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c, err := dialLine(t, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.roundTrip("a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("pass: got %q, %v", got, err)
	}

	p.SetMode(Cut)
	if _, err := c.roundTrip("b", 5*time.Second); err == nil {
		t.Fatalf("cut: an open connection still echoes")
	}
	if _, err := dialLine(t, p.Addr()); err == nil {
		t.Fatalf("cut: a new connection was accepted")
	}

	p.SetMode(Pass)
	c, err = dialLine(t, p.Addr())
	if err != nil {
		t.Fatalf("pass after cut: dial: %v", err)
	}
	if got, err := c.roundTrip("c", 5*time.Second); err != nil || got != "c" {
		t.Fatalf("pass after cut: got %q, %v", got, err)
	}

	p.SetMode(Hang)
	// Held: no echo comes back while hanging. A short deadline only
	// proves absence here; the positive check below has a long one.
	if _, err := c.roundTrip("d", 300*time.Millisecond); err == nil {
		t.Fatalf("hang: bytes were forwarded")
	}
	c2, err := dialLine(t, p.Addr())
	if err != nil {
		t.Fatalf("hang: new connections must still be accepted: %v", err)
	}
	p.SetMode(Pass)
	// The held line goes through once the hang ends, on the same connection.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || got != "d\n" {
		t.Fatalf("after hang: held line %q, %v", got, err)
	}
	if got, err := c2.roundTrip("e", 5*time.Second); err != nil || got != "e" {
		t.Fatalf("after hang: connection accepted while hanging: %q, %v", got, err)
	}
	if n := p.Accepted(); n != 3 {
		t.Errorf("accepted %d client connections, want 3", n)
	}
}
