package ingest

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/mqtttest"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

// holdProxy is a TCP proxy between pgx and PostgreSQL that the test can
// make hold every byte, in both directions, with the connections open: a
// database that stops answering without an error or a RST. The shared
// PostgreSQL itself is never touched.
type holdProxy struct {
	ln     net.Listener
	target string
	gate   sync.RWMutex // write-locked while held; pumps read-lock to forward

	mu    sync.Mutex
	conns []net.Conn
}

func startHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) addr() string { return p.ln.Addr().String() }
func (p *holdProxy) hold()        { p.gate.Lock() }
func (p *holdProxy) release()     { p.gate.Unlock() }

func (p *holdProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pump(up, c)
		go p.pump(c, up)
	}
}

// pump copies src to dst, chunk by chunk, each chunk waiting for the gate.
func (p *holdProxy) pump(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *holdProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestIngestTimesOutHungDatabase: with the database hung, each commit
// attempt ends at the commit timeout, is logged and counted as a timeout,
// and nothing is acknowledged; once the database answers again the batch
// commits.
func TestIngestTimesOutHungDatabase(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	ctx := t.Context()
	if err := store.Migrate(ctx, dbURL, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startHoldProxy(t, u.Host)
	held := false
	t.Cleanup(func() {
		if held {
			proxy.release()
		}
	})
	viaProxy := *u
	viaProxy.Host = proxy.addr()
	st, err := store.Open(ctx, viaProxy.String())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(st.Close)
	direct, err := pgx.Connect(ctx, dbURL) // to count rows behind the proxy's back
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close(context.Background()) })
	rows := func() int {
		var n int
		if err := direct.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}

	b := mqtttest.Start(t)
	logs := &logBuffer{}
	in := startIngest(t, b, "ingest-hang", st, logs, func(in *Ingest) {
		in.pipe.commitTimeout = 200 * time.Millisecond
		in.pipe.retryMin, in.pipe.retryMax = 10*time.Millisecond, 20*time.Millisecond
	})
	pub := newPublisher(t, b)
	base := testBase()
	publishReadings(t, pub, base, 0, 10)
	waitFor(t, "10 readings through the proxy", func() bool { return rows() == 10 })

	proxy.hold()
	held = true
	publishReadings(t, pub, base, 10, 10)
	waitFor(t, "two timed-out attempts", func() bool { return testutil.ToFloat64(in.m.flushErrors[FlushTimeout]) >= 2 })
	if n := logs.count("insert readings timed out"); n < 2 {
		t.Errorf("%d timeout log lines, want one per attempt (>= 2)", n)
	}
	if n := rows(); n != 10 {
		t.Fatalf("%d rows while the database hangs, want 10", n)
	}
	proxy.release()
	held = false
	waitFor(t, "the held batch to commit", func() bool { return rows() == 20 })
	// Counted just after the commit, so possibly after the rows show. A
	// timed-out attempt's statements, held in the proxy, reach the database
	// on release and may commit there; the retry then finds its readings
	// stored and counts them as duplicates (the documented at-least-once
	// case), so each reading is counted once, as one or the other.
	waitFor(t, "20 readings counted as ingested or duplicate", func() bool {
		return testutil.ToFloat64(in.m.ingested)+testutil.ToFloat64(in.m.duplicate) == 20
	})
	if n := testutil.ToFloat64(in.m.conflict); n != 0 {
		t.Errorf("%v readings counted as conflicts; a redelivered reading has the same value", n)
	}
}
