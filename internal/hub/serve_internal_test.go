package hub

import (
	"crypto/tls"
	"net"
	"testing"
)

// hijacked is the shape of fasthttp's hijacked connection.
type hijacked struct{ net.Conn }

func (h hijacked) UnsafeConn() net.Conn { return h.Conn }

// TestSetSendBufferFindsTheSocket: the send buffer is set on the TCP
// socket whatever wraps it (fasthttp's hijacked connection, TLS).
func TestSetSendBufferFindsTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, conn := range map[string]net.Conn{
		"tcp":      c,
		"hijacked": hijacked{c},
		"tls":      tls.Client(hijacked{c}, &tls.Config{}),
	} {
		if !setSendBuffer(conn, 64<<10) {
			t.Errorf("%s: no socket found", name)
		}
	}
	if setSendBuffer(hijacked{nil}, 1) {
		t.Error("set a buffer on no socket")
	}
}
