package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
)

// liveIndex maps a reading's ts back to its index in this run.
type liveIndex struct {
	baseUs int64
	total  int
	sentAt []atomic.Int64 // ns before Publish; 0: not sent
	first  []atomic.Int64 // ns of the first receipt by any client
}

func (x *liveIndex) lookup(ts string) (int, bool) {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return 0, false
	}
	i := t.UnixMicro() - x.baseUs
	if i < 0 || i >= int64(x.total) || x.sentAt[i].Load() == 0 {
		return 0, false
	}
	return int(i), true
}

// reader is one receiving WebSocket client; its fields belong to its
// goroutine until done is closed.
type reader struct {
	ws       *websocket.Conn
	done     chan struct{}
	distinct atomic.Int64

	seen    []uint64 // bitset over reading indices
	lat     hist
	dups    int
	foreign int // readings of other sources, or undecodable
	thinned int
	closed  string // why the connection ended early, if it did
}

type frame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref"`
	Data json.RawMessage `json:"data"`
}

// itemData is what a reader takes from a message's data: a reading's
// sensor and ts, a gap's count of readings thinned.
type itemData struct {
	SensorID string `json:"sensor_id"`
	TS       string `json:"ts"`
	Thinned  int    `json:"thinned"`
}

// batchItem is one message of a batch frame, or a frame of its own.
type batchItem struct {
	Type string   `json:"type"`
	Data itemData `json:"data"`
}

// read decodes every frame until ctx ends or the connection closes. The
// arrival time is taken as soon as the frame is read.
func (c *reader) read(ctx context.Context, x *liveIndex) {
	defer close(c.done)
	rctx, cancel := ownContext(ctx)
	defer cancel()
	var batch []batchItem
	for {
		_, data, err := c.ws.Read(rctx)
		if err != nil {
			if ctx.Err() == nil {
				c.closed = err.Error()
			}
			return
		}
		recv := time.Now()
		if items, ok, err := decodeBatch(data, batch[:0]); ok {
			if err != nil {
				c.foreign++
				continue
			}
			batch = items
			for _, m := range batch {
				c.handle(x, m, recv)
			}
			continue
		}
		// A frame of one message: its data is read only for the types
		// handled, so that other messages (alerts, presence) are not
		// taken for foreign readings.
		var f frame
		if json.Unmarshal(data, &f) != nil {
			c.foreign++
			continue
		}
		if f.Type != "reading" && f.Type != "gap" {
			continue
		}
		m := batchItem{Type: f.Type}
		if json.Unmarshal(f.Data, &m.Data) != nil {
			c.foreign++
			continue
		}
		c.handle(x, m, recv)
	}
}

// handle takes one message, alone or out of a batch frame. The gap
// message that ends a period of thinning comes in a batch frame, with the
// latest readings after it.
func (c *reader) handle(x *liveIndex, m batchItem, recv time.Time) {
	switch m.Type {
	case "reading":
		c.record(x, m.Data, recv)
	case "gap":
		c.thinned += m.Data.Thinned
	}
}

func (c *reader) record(x *liveIndex, d itemData, recv time.Time) {
	i, ok := x.lookup(d.TS)
	if !ok {
		c.foreign++
		return
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if c.seen[w]&bit != 0 {
		c.dups++
		return
	}
	c.seen[w] |= bit
	c.distinct.Add(1)
	now := recv.UnixNano()
	c.lat.add(time.Duration(now - x.sentAt[i].Load()))
	x.first[i].CompareAndSwap(0, now)
}

// live runs the readings part: C receiving clients, P publishers at R/s
// for D, then waits (up to Drain) until every acknowledged reading is
// stored and every client has it.
func (r *runner) live(ctx context.Context) error {
	c := r.cfg
	total := int(float64(c.Rate) * c.Duration.Seconds())
	x := &liveIndex{total: total, sentAt: make([]atomic.Int64, total), first: make([]atomic.Int64, total)}
	sensor := func(p int) string { return fmt.Sprintf("lg%s-p%d", r.id, p) }

	r.logf("connecting %d clients", c.Clients)
	conns, err := r.connectMany(ctx, c.Clients)
	if err != nil {
		return err
	}
	rctx, cancelReaders := context.WithCancel(ctx)
	readers := make([]*reader, len(conns))
	for i, ws := range conns {
		readers[i] = &reader{ws: ws, done: make(chan struct{}), seen: make([]uint64, total/64+1)}
		go readers[i].read(rctx, x)
	}
	defer func() {
		cancelReaders()
		closeAll(conns)
		for _, rd := range readers {
			<-rd.done
		}
	}()

	pubs := make([]mqtt.Client, c.Publishers)
	for p := range pubs {
		cl, err := newMQTT(c.MQTTURL, fmt.Sprintf("lg%s-pub%d", r.id, p))
		if err != nil {
			return err
		}
		pubs[p] = cl
		defer cl.Disconnect(250)
	}
	// One reading per series first: series never seen before are admitted
	// at a bounded rate (WATCHROOM_NEW_SERIES_RATE), and that is not what
	// is measured here.
	for p, cl := range pubs {
		tok := cl.Publish("sensors/"+sensor(p)+"/v", 1, false, `{"value":0,"ts":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)+`"}`)
		tok.WaitTimeout(5 * time.Second)
	}
	time.Sleep(1500 * time.Millisecond)

	var stored0 float64
	r.mu.Lock()
	if n := len(r.ingested); n > 0 {
		stored0 = r.ingested[n-1].v
	}
	r.mu.Unlock()
	dbBefore := r.countStored(ctx)

	base := time.Now().Truncate(time.Second)
	x.baseUs = base.UnixMicro()
	r.logf("publishing %d readings at %d/s from %d publishers to %d clients", total, c.Rate, c.Publishers, c.Clients)
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(pubs))
	start := time.Now()
	for p, cl := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = publishPaced(ctx, cl, "sensors/"+sensor(p)+"/v", p, len(pubs), total, c.Rate, base, x.sentAt, &acked, c.Drain+c.Duration)
		}()
	}
	wg.Wait()
	pubEnd := time.Now()
	published := 0
	for i := range x.sentAt {
		if x.sentAt[i].Load() != 0 {
			published++
		}
	}
	res := &r.res.Ingest
	res.Published = published
	res.Acked = int(acked.Load())
	res.PublishSeconds = pubEnd.Sub(start).Seconds()
	for _, e := range errs {
		if e != nil {
			res.Errors = append(res.Errors, e.Error())
		}
	}

	// Wait for every client to have every acknowledged reading, bounded.
	deadline := time.Now().Add(c.Drain)
	for time.Now().Before(deadline) {
		all := true
		for _, rd := range readers {
			if rd.distinct.Load() < int64(res.Acked) {
				select {
				case <-rd.done: // closed: it will not catch up
				default:
					all = false
				}
			}
		}
		if all && (len(readers) > 0 || r.storedSince(stored0) >= float64(res.Acked)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // one more sample of the counter
	cancelReaders()
	for _, rd := range readers {
		<-rd.done
	}

	// Stored: counted in the database when we can, else the server's counter.
	if dbBefore >= 0 {
		res.Stored = r.countStored(ctx) - dbBefore
		res.StoredFrom = "database"
	} else {
		res.Stored = int(r.storedSince(stored0))
		res.StoredFrom = "watchroom_readings_ingested_total"
	}
	if last := r.lastIncrease(stored0); !last.IsZero() {
		res.StoredPerSecond = float64(res.Stored) / last.Sub(start).Seconds()
	}
	res.OfferedPerSecond = float64(published) / res.PublishSeconds

	var lag hist
	for i := range x.first {
		if f := x.first[i].Load(); f != 0 {
			lag.add(time.Duration(f - x.sentAt[i].Load()))
		}
	}
	res.Lag = lag.summary()

	var all hist
	lv := &r.res.Live
	lv.Clients = len(readers)
	lv.MinMissed = -1
	for _, rd := range readers {
		all.merge(&rd.lat)
		missed := res.Acked - int(rd.distinct.Load())
		lv.Missed += max(missed, 0)
		lv.MaxMissed = max(lv.MaxMissed, missed)
		if lv.MinMissed < 0 || missed < lv.MinMissed {
			lv.MinMissed = missed
		}
		lv.Duplicates += rd.dups
		lv.Thinned += rd.thinned
		if rd.closed != "" {
			lv.Closed++
		}
	}
	lv.Latency = all.summary()
	if all.n > 0 {
		lv.DeliveriesPerSecond = float64(all.n) / pubEnd.Sub(start).Seconds()
	}
	r.logf("readings: %d published, %d acked, %d stored", res.Published, res.Acked, res.Stored)
	return nil
}

// storedSince is the server's stored-readings counter minus from.
func (r *runner) storedSince(from float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.ingested); n > 0 {
		return r.ingested[n-1].v - from
	}
	return 0
}

// lastIncrease is when the stored-readings counter last went up.
func (r *runner) lastIncrease(from float64) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	for i := 1; i < len(r.ingested); i++ {
		if r.ingested[i].v > r.ingested[i-1].v && r.ingested[i].v > from {
			at = r.ingested[i].at
		}
	}
	return at
}

// countStored counts this run's readings in the database; -1 without one.
func (r *runner) countStored(ctx context.Context) int {
	if r.cfg.DatabaseURL == "" {
		return -1
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, r.cfg.DatabaseURL)
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(cctx, `SELECT count(*) FROM readings WHERE sensor_id LIKE $1`,
		strings.ReplaceAll("lg"+r.id+"-p", "_", `\_`)+"%").Scan(&n); err != nil {
		return -1
	}
	return n
}

// ownContext returns a child of ctx for one connection's reads. Each read
// of coder/websocket registers on its context (context.AfterFunc) and
// deregisters after; on a context shared by a thousand readers, those
// take and release one mutex a thousand times per message and serialize
// the readers. A child of their own takes that mutex only when ctx ends.
func ownContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

// batchPrefix starts a batch frame as the server encodes it (type first).
var batchPrefix = []byte(`{"type":"batch","data":`)

// decodeBatch decodes data into items (appended to the slice given) in one
// pass when it is a batch frame, and reports whether it was one. The
// server writes a frame's type first (protocol.Encode, the hub's batch
// head), so the prefix tells a batch without decoding the frame and then
// its data: the load generator shares the machine with the server, and
// decoding is most of its CPU.
func decodeBatch[T any](data []byte, items []T) ([]T, bool, error) {
	if !bytes.HasPrefix(data, batchPrefix) {
		return items, false, nil
	}
	b := struct {
		Data []T `json:"data"`
	}{Data: items}
	err := json.Unmarshal(data, &b)
	return b.Data, true, err
}
