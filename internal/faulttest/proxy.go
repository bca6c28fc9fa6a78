// Package faulttest holds what fault-injection tests need besides the real
// services: a TCP proxy the test controls, placed between the server under
// test and a dependency (PostgreSQL), that can pass traffic, cut every
// connection, or hang them (hold the bytes with the connections open).
//
// Who may call what: every Proxy method is safe from any goroutine.
package faulttest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Cut closes every open connection and refuses new ones (the listener
	// is closed, so a dial gets "connection refused"), as when the
	// dependency's host goes away.
	Cut
	// Hang keeps connections open and accepts new ones, but forwards
	// nothing: bytes read are held until the mode is Pass again, as when
	// a network path or the dependency stops answering without a reset.
	Hang
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Hang:
		return "hang"
	}
	return "unknown"
}

// Proxy forwards TCP connections from Addr to an upstream address.
type Proxy struct {
	tb       testing.TB
	upstream string
	addr     string

	mu      sync.Mutex
	mode    Mode
	resumed chan struct{} // closed when the mode leaves Hang; replaced on entering it
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup

	accepted int
}

// NewProxy listens on a free loopback port and forwards to upstream
// (host:port). It is closed when the test ends.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faulttest: listen: %v", err)
	}
	p := &Proxy{tb: tb, upstream: upstream, addr: ln.Addr().String(), ln: ln,
		conns: map[net.Conn]struct{}{}, resumed: make(chan struct{})}
	close(p.resumed)
	p.wg.Add(1)
	go p.acceptLoop(ln)
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port; point the server under test at it.
func (p *Proxy) Addr() string { return p.addr }

// Accepted is how many client connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy. Leaving Cut listens again on the same
// address; leaving Hang releases the held bytes.
func (p *Proxy) SetMode(m Mode) {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || m == p.mode {
		return
	}
	old := p.mode
	p.mode = m
	if old == Hang {
		close(p.resumed)
	}
	if m == Hang {
		p.resumed = make(chan struct{})
	}
	switch {
	case m == Cut:
		p.ln.Close()
		p.ln = nil
		for c := range p.conns {
			c.Close()
		}
	case old == Cut:
		// The port was ours a moment ago; on loopback nothing else takes
		// it in between, and Go sets SO_REUSEADDR.
		var ln net.Listener
		var err error
		for i := 0; i < 50; i++ {
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			p.tb.Fatalf("faulttest: listen again on %s: %v", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.acceptLoop(ln)
	}
}

// Close ends the proxy and every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	if p.mode == Hang {
		close(p.resumed)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Cut or Close
		}
		if !p.track(c, true) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c (a client connection when client is set, else its
// upstream one); it reports false when c must be closed at once.
func (p *Proxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == Cut {
		return false
	}
	p.conns[c] = struct{}{}
	if client {
		p.accepted++
	}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// gate returns nil when bytes may flow, or a channel closed when they may
// flow again; ok is false when the proxy is closed.
func (p *Proxy) gate() (wait <-chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	if p.mode == Hang {
		return p.resumed, true
	}
	return nil, true
}

// hold blocks while the proxy hangs; it reports false once the proxy is closed.
func (p *Proxy) hold() bool {
	for {
		wait, ok := p.gate()
		if !ok {
			return false
		}
		if wait == nil {
			return true
		}
		<-wait
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	// A connection accepted while hanging is held before it is even dialed
	// through: the client sees a connect that never gets an answer.
	if !p.hold() {
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up, false) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, client); done <- struct{}{} }()
	go func() { p.pipe(client, up); done <- struct{}{} }()
	<-done
	// One side ended: end both so the other copy returns too.
	client.Close()
	up.Close()
	<-done
}

// pipe copies src to dst, holding each chunk while the proxy hangs.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: serve ends both sides
		}
	}
}
