package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// outMsg is one item of a connection's send queue: one or more encoded
// server messages, in order. A broadcast of a batch of readings is one
// item whose msgs slice is shared by every connection that wants them all,
// so it must never be modified. raw items (the bare "pong" text reply)
// hold one frame written as is, never inside a batch.
type outMsg struct {
	msgs [][]byte
	raw  bool
}

// conn is one authenticated WebSocket connection.
type conn struct {
	h       *Hub
	ws      *websocket.Conn
	user    string
	role    model.Role
	expires time.Time // reader goroutine only (re-auth changes it)
	addr    string
	claims  atomic.Pointer[auth.Claims] // the current token's; read by Recheck

	expiryMu   sync.Mutex
	expiryStop func() bool // stops the pending expiry timer
	since      time.Time
	limiter    *rate.Limiter // reader goroutine only
	filter     atomic.Pointer[filter]

	send *sendQueue // bounded in items by SendQueue

	// mu guards where a message goes: the send queue, the held list of a
	// resume in progress, or the latest-per-series map of thinned
	// readings. Every enqueuer takes it (see push); it is never held
	// while blocking.
	mu      sync.Mutex
	holding bool // a resume is reading its replay: live messages wait in held
	// awaitingResume: the auth message announced a resume that has not
	// started yet; live messages are held meanwhile.
	awaitingResume bool
	// replayed holds the resume keys of the last replay until
	// replayedUntil (see dropReplayedLocked).
	replayed      map[string]struct{}
	replayedUntil time.Time
	held          []heldItem    // in arrival order
	heldMsgs      int           // messages in held
	thin          *thinning     // non-nil while readings are being conflated
	thinKick      chan struct{} // capacity 1: tells the writer that thin was started

	closeOnce sync.Once
	closing   chan struct{} // closed by fail: the writer sends closeCode and stops
	closeCode int
	closeText string
	closeMsg  []byte // written just before the close frame, if set

	// deadlineMu orders the reader's read-deadline extensions with the
	// writer's final cut, so that a cut read deadline stays cut.
	deadlineMu sync.Mutex
	readCut    bool
}

// closeGrace is how long the reader waits for the client's answering close
// frame once the server's close frame is out.
const closeGrace = time.Second

// heldItem is a live message that arrived during a resume.
type heldItem struct {
	m   outMsg
	rs  []model.Reading // the readings of m.msgs, when m is a batch of readings
	key string          // the resume key of m's one message, if it has one
}

// enqueue queues msg without blocking. A full queue makes the connection a
// slow consumer; it reports whether msg was queued.
func (c *conn) enqueue(msg []byte) bool { return c.push(outMsg{msgs: [][]byte{msg}}, nil, "") }

func (c *conn) enqueueMsg(m outMsg) bool { return c.push(m, nil, "") }

// enqueueKeyed queues a message that a resume can replay, under its
// resume key.
func (c *conn) enqueueKeyed(msg []byte, key string) bool {
	return c.push(outMsg{msgs: [][]byte{msg}}, nil, key)
}

// enqueueReadings queues msgs, the encoded rs (same length). Past the
// high-water mark they are thinned instead (see conflateLocked).
func (c *conn) enqueueReadings(msgs [][]byte, rs []model.Reading) bool {
	return c.push(outMsg{msgs: msgs}, rs, "")
}

// push routes m: to the held list while a resume reads its replay, else
// to the send queue (or, for readings past the high-water mark, to the
// thinned map). It never blocks.
func (c *conn) push(m outMsg, rs []model.Reading, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		if c.heldMsgs+len(m.msgs) > c.h.cfg.ResumeMax {
			// The replay is taking longer than live traffic can wait.
			c.dropLocked(len(m.msgs), reasonSlowConsumer)
			return false
		}
		c.held = append(c.held, heldItem{m: m, rs: rs, key: key})
		c.heldMsgs += len(m.msgs)
		return true
	}
	if c.replayed != nil {
		if m, rs = c.dropReplayedLocked(m, rs, key); len(m.msgs) == 0 {
			return true
		}
	}
	return c.pushLocked(m, rs)
}

// dropReplayedLocked leaves out of m what the last resume replayed. A
// message is pushed after its commit, not with it: one committed before
// the replay was read may be pushed only after the hand-over, and the
// client has it already. The replayed keys are kept for
// replayedWindow after the hand-over, far longer than a commit takes to
// be pushed. c.mu must be held.
func (c *conn) dropReplayedLocked(m outMsg, rs []model.Reading, key string) (outMsg, []model.Reading) {
	if c.h.now().After(c.replayedUntil) {
		c.replayed = nil
		return m, rs
	}
	if rs == nil {
		if _, dup := c.replayed[key]; dup && key != "" {
			c.h.m.queueDrops.WithLabelValues(reasonReplayed).Inc()
			return outMsg{}, nil
		}
		return m, rs
	}
	var keep outMsg
	var keepRS []model.Reading
	for i, r := range rs {
		if _, dup := c.replayed[r.ResumeKey()]; dup {
			c.h.m.queueDrops.WithLabelValues(reasonReplayed).Inc()
			continue
		}
		keep.msgs = append(keep.msgs, m.msgs[i])
		keepRS = append(keepRS, r)
	}
	return keep, keepRS
}

// pushLocked queues m, or thins rs; c.mu must be held.
func (c *conn) pushLocked(m outMsg, rs []model.Reading) bool {
	select {
	case <-c.closing:
		c.h.m.queueDrops.WithLabelValues("closing").Add(float64(len(m.msgs)))
		return false
	default:
	}
	// Once thinning has started every reading goes to the map until the
	// writer has emptied the queue and flushed it, so readings keep their
	// order: nothing older can be written after the flushed latest values.
	if rs != nil {
		if items, msgs := c.send.size(); c.thin != nil || items >= c.h.cfg.HighWater || msgs >= c.h.cfg.HighWaterMsgs {
			c.conflateLocked(m.msgs, rs)
			return true
		}
	}
	if !c.send.put(m, c.h.cfg.SendQueue) {
		c.dropLocked(len(m.msgs), reasonSlowConsumer)
		return false
	}
	return true
}

// dropLocked counts n undelivered messages and closes the connection as a
// slow consumer (4008).
func (c *conn) dropLocked(n int, reason string) {
	c.h.m.queueDrops.WithLabelValues(reason).Add(float64(n))
	c.h.stats.failed.Add(uint64(n))
	c.fail(protocol.CloseSlowConsumer, "slow consumer", reason)
}

// hold starts holding live messages for a resume.
func (c *conn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = true
}

// release stops holding. Under the lock, so that no live message can slip
// between: it queues what before returns (the replay, which sets
// c.replayed), then the held messages in arrival order, leaving out those
// the replay carried (dropReplayedLocked).
func (c *conn) release(before func() [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(before)
}

// releaseLocked is release with c.mu held.
func (c *conn) releaseLocked(before func() [][]byte) {
	held := c.held
	c.held, c.heldMsgs, c.holding = nil, 0, false
	if first := before(); len(first) > 0 && !c.pushLocked(outMsg{msgs: first}, nil) {
		return
	}
	// Runs of held readings go out as one item (thinnable), runs of other
	// messages as another, so a long resume does not fill the queue with
	// small items.
	var run outMsg
	var runRS []model.Reading
	flush := func() bool {
		if len(run.msgs) == 0 {
			return true
		}
		ok := c.pushLocked(run, runRS)
		run, runRS = outMsg{}, nil
		return ok
	}
	for _, it := range held {
		if c.replayed != nil {
			if it.m, it.rs = c.dropReplayedLocked(it.m, it.rs, it.key); len(it.m.msgs) == 0 {
				continue
			}
		}
		if it.m.raw || (it.rs != nil) != (runRS != nil) {
			if !flush() {
				return
			}
		}
		if it.m.raw {
			if !c.pushLocked(it.m, nil) {
				return
			}
			continue
		}
		run.msgs = append(run.msgs, it.m.msgs...)
		if it.rs != nil {
			runRS = append(runRS, it.rs...)
		}
	}
	flush()
}

// fail asks the writer to send a close frame with code and end the
// connection. Safe from any goroutine; the first call wins.
func (c *conn) fail(code int, text, reason string) { c.failWith(code, text, reason, nil) }

// failWith is fail with a last message, written just before the close
// frame. Queuing that message instead would race with the close: the
// writer stops sending queued messages once the connection is closing.
func (c *conn) failWith(code int, text, reason string, last []byte) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.closeMsg = code, text, last
		c.h.m.disconnects.WithLabelValues(reason).Inc()
		close(c.closing)
	})
}

// writeLoop is the connection's only writer. It ends when the connection
// is closing (after sending the close frame) or a write fails.
func (c *conn) writeLoop(readerDone <-chan struct{}) {
	h := c.h
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	defer c.cutReader()
	// pending collects the messages of the items queued right now; they go
	// out in frames of at most MaxBatch messages.
	var pending [][]byte
	var buf bytes.Buffer
	for {
		// Closing wins over queued messages: select picks at random among
		// ready cases, and a slow consumer's queue is always ready.
		select {
		case <-c.closing:
			c.finish(&buf)
			return
		default:
		}
		select {
		case <-c.closing:
			c.finish(&buf)
			return
		case <-readerDone:
			// The reader fails the connection before it returns, so the
			// close frame (an echo, or 4001 for an expired token) is due.
			c.writeClose()
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				c.fail(websocket.CloseAbnormalClosure, "", reasonWriteError)
				return
			}
		case <-c.send.wake:
			pending = pending[:0]
			for len(pending) < maxPending {
				m, ok := c.send.take()
				if !ok {
					break
				}
				if m.raw {
					// Keep order: what came before, then the raw frame.
					if !c.writeFrames(pending, &buf) || !c.write(websocket.TextMessage, m.msgs[0], 1) {
						return
					}
					pending = pending[:0]
				} else {
					pending = append(pending, m.msgs...)
				}
			}
			if items, _ := c.send.size(); items > 0 {
				c.send.signal() // the rest after a look at closing and pings
			}
			if !c.writeFrames(pending, &buf) {
				return
			}
			clear(pending) // drop references to shared message buffers
			if !c.flushThinned(&buf) {
				return
			}
		case <-c.thinKick:
			// Thinning started; if the queue is already empty (the writer
			// drained it meanwhile), the latest values go out now.
			if !c.flushThinned(&buf) {
				return
			}
		}
	}
}

// finish writes the close frame once the connection is closing. A server
// shutdown (1001) first writes what is still queued: the hub closes after
// ingest's final flush, and those readings were committed for clients to
// see. Nothing can be queued any more (push refuses a closing connection),
// and each write has its deadline, so this ends. Writer goroutine only.
func (c *conn) finish(buf *bytes.Buffer) {
	if c.closeCode == protocol.CloseGoingAway {
		var msgs [][]byte
		for {
			m, ok := c.send.take()
			if !ok {
				break
			}
			if m.raw {
				continue // a bare "pong": the request it answers is moot now
			}
			msgs = append(msgs, m.msgs...)
		}
		msgs = append(msgs, c.takeThinned()...)
		if !c.writeFrames(msgs, buf) {
			return
		}
	}
	c.writeClose()
}

// flushThinned writes the gap and latest readings once thinning can end
// (see takeThinned). Writer goroutine only.
func (c *conn) flushThinned(buf *bytes.Buffer) bool {
	msgs := c.takeThinned()
	return len(msgs) == 0 || c.writeFrames(msgs, buf)
}

// maxPending bounds the messages the writer gathers before writing, so it
// returns to check for closing and pings between large bursts.
const maxPending = 4096

// writeFrames writes msgs in order, at most MaxBatch per frame.
func (c *conn) writeFrames(msgs [][]byte, buf *bytes.Buffer) bool {
	for len(msgs) > 0 {
		n := min(len(msgs), c.h.cfg.MaxBatch)
		if !c.writeBatch(msgs[:n], buf) {
			return false
		}
		msgs = msgs[n:]
	}
	return true
}

var (
	batchHead = []byte(`{"type":"batch","data":[`)
	batchTail = []byte(`]}`)
)

func (c *conn) writeBatch(batch [][]byte, buf *bytes.Buffer) bool {
	if len(batch) == 1 {
		return c.write(websocket.TextMessage, batch[0], 1)
	}
	buf.Reset()
	buf.Write(batchHead)
	for i, b := range batch {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.Write(batchTail)
	return c.write(websocket.TextMessage, buf.Bytes(), len(batch))
}

func (c *conn) write(kind int, b []byte, messages int) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(kind, b); err != nil {
		c.h.stats.failed.Add(uint64(messages))
		reason := reasonWriteError
		if isTimeout(err) {
			// The client stopped reading: the socket buffers are full.
			reason = reasonWriteTimeout
		}
		c.fail(websocket.CloseAbnormalClosure, "", reason)
		return false
	}
	c.h.m.framesOut.Inc()
	c.h.stats.messages.Add(uint64(messages))
	return true
}

func (c *conn) writeClose() {
	if c.closeCode == websocket.CloseAbnormalClosure {
		return // the socket is already broken
	}
	deadline := time.Now().Add(c.h.cfg.WriteTimeout)
	if c.closeMsg != nil {
		_ = c.ws.SetWriteDeadline(deadline)
		if c.ws.WriteMessage(websocket.TextMessage, c.closeMsg) == nil {
			c.h.m.framesOut.Inc()
			c.h.stats.messages.Add(1)
		}
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), deadline)
}

// cutReader bounds the reader once the writer has ended: it gets
// closeGrace to read the client's answering close frame (nothing when the
// socket is broken), then its read fails and Serve returns. A read
// deadline is the only way to do it: fasthttp's hijacked net.Conn ignores
// Close until the upgrade handler returns, so without this a client that
// never answers keeps its connection, and Shutdown waiting, for
// 2×PingInterval.
func (c *conn) cutReader() {
	grace := closeGrace
	if c.closeCode == websocket.CloseAbnormalClosure {
		grace = 0
	}
	c.cutReadAt(time.Now().Add(grace))
}

func (c *conn) cutReadAt(t time.Time) {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readCut = true
	_ = c.ws.SetReadDeadline(t)
}

// readLoop reads requests until the connection ends. It runs on the
// goroutine that called Serve.
func (c *conn) readLoop(ctx context.Context) {
	h := c.h
	for {
		kind, b, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				c.fail(protocol.CloseTooBig, "frame too big", reasonTooBig) // the library already sent 1009
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
				c.fail(websocket.CloseNormalClosure, "", reasonClientClosed)
			case isTimeout(err):
				// No pong (nor anything else) for 2×PingInterval.
				c.fail(websocket.CloseAbnormalClosure, "", reasonPongTimeout)
			default:
				c.fail(websocket.CloseAbnormalClosure, "", reasonReadError)
			}
			return
		}
		c.extendReadDeadline()
		if h.now().After(c.expires) {
			c.failWith(protocol.CloseAuthFailed, "token expired", reasonTokenExpired,
				mustEncode("auth_error", nil, map[string]string{"message": "token expired; log in again"}))
			return
		}
		if kind == websocket.TextMessage && string(bytes.TrimSpace(b)) == "ping" {
			h.m.messagesIn.WithLabelValues("ping_text").Inc()
			if !c.limiter.Allow() {
				c.replyError(nil, protocol.Errorf(protocol.CodeRateLimited, "more than %g requests per second", h.cfg.Rate))
				continue
			}
			c.enqueueMsg(outMsg{msgs: [][]byte{[]byte("pong")}, raw: true})
			continue
		}
		if kind != websocket.TextMessage {
			c.replyError(nil, protocol.Errorf(protocol.CodeBadRequest, "binary frames are not supported; send JSON text frames"))
			continue
		}
		c.handle(ctx, b)
	}
}

// extendReadDeadline gives the client two ping periods to show it is alive;
// it is called by the reader only, and does nothing once the writer has
// cut the read deadline short.
func (c *conn) extendReadDeadline() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.readCut {
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.h.cfg.PingInterval))
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) replyError(ref json.RawMessage, e *protocol.Error) {
	c.h.m.errorsOut.WithLabelValues(e.Code).Inc()
	c.enqueue(errorMessage(ref, e))
}

func (c *conn) reply(typ string, ref json.RawMessage, data any) {
	msg, err := protocol.Encode(typ, nil, ref, data)
	if err != nil {
		c.h.log.Error("encode reply", "type", typ, "err", err)
		c.replyError(ref, protocol.Errorf(protocol.CodeInternal, "internal error"))
		return
	}
	c.h.m.messagesOut.WithLabelValues(typ).Inc()
	c.enqueue(msg)
}

func (c *conn) handle(ctx context.Context, b []byte) {
	h := c.h
	req, perr := parseRequest(b)
	if perr != nil {
		h.m.messagesIn.WithLabelValues("invalid").Inc()
		c.replyError(req.ID, perr)
		return
	}
	rt, known := h.routes[req.Type]
	if !known {
		h.m.messagesIn.WithLabelValues("unknown").Inc()
		c.replyError(req.ID, protocol.Errorf(protocol.CodeUnknownType, "unknown message type %q", truncate([]byte(req.Type), 32)))
		return
	}
	h.m.messagesIn.WithLabelValues(req.Type).Inc()
	// Acks count too (each costs a database write); a client catching up
	// on many redelivered messages confirms them in one ack with an array.
	if !c.limiter.Allow() {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeRateLimited, "more than %g requests per second", h.cfg.Rate))
		return
	}
	if !c.role.AtLeast(rt.min) {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeForbidden, "%s needs role %s or above; you are %s", req.Type, rt.min, c.role))
		return
	}
	switch req.Type {
	case "subscribe", "unsubscribe":
		c.subscribe(req)
		return
	case "ack":
		c.ack(ctx, req)
		return
	case "resume":
		c.resume(ctx, req)
		return
	case "auth":
		c.reauth(ctx, req)
		return
	}
	rep, err := rt.fn(ctx, protocol.Request{User: c.user, Role: c.role, Type: req.Type, ID: req.ID, Data: req.Data})
	if err != nil {
		var e *protocol.Error
		if !errors.As(err, &e) {
			h.log.Error("request failed", "type", req.Type, "user", c.user, "err", err)
			e = protocol.Errorf(protocol.CodeInternal, "internal error; try again")
		}
		c.replyError(req.ID, e)
		return
	}
	if rep.Type != "" {
		c.reply(rep.Type, req.ID, rep.Data)
	}
}

func (c *conn) subscribe(req envelope) {
	var d struct {
		Sensors []string `json:"sensors"`
	}
	if err := json.Unmarshal(req.Data, &d); err != nil || req.Data == nil {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeBadRequest, `data must be {"sensors":[...]}`))
		return
	}
	next, e := c.filter.Load().apply(req.Type == "subscribe", d.Sensors)
	if e != nil {
		c.replyError(req.ID, e)
		return
	}
	c.filter.Store(next)
	c.reply("subscribed", req.ID, next.describe())
}

// maxAckIDs bounds the ids one ack may confirm: as many as are sent on
// connect (pendingLimit).
const maxAckIDs = pendingLimit

func (c *conn) ack(ctx context.Context, req envelope) {
	ids, e := decodeAckRef(req.Ref)
	if e != nil {
		c.replyError(req.ID, e)
		return
	}
	acked, err := c.h.deliveries.AckDeliveries(ctx, c.user, ids)
	if err != nil {
		c.h.log.Error("ack deliveries", "user", c.user, "ids", len(ids), "err", err)
		c.replyError(req.ID, protocol.Errorf(protocol.CodeInternal, "could not record the ack; it will be delivered again"))
		return
	}
	if len(acked) < len(ids) {
		missing := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return slices.Contains(acked, id) })
		c.replyError(req.ID, protocol.Errorf(protocol.CodeNotFound, "no unacknowledged message %v for you", missing))
	}
}

// decodeAckRef reads an ack's ref: one server message id (a number or a
// numeric string) or an array of up to maxAckIDs of them.
func decodeAckRef(ref json.RawMessage) ([]int64, *protocol.Error) {
	bad := protocol.Errorf(protocol.CodeBadRequest, "ack needs ref: the id of the message being confirmed, or an array of up to %d ids", maxAckIDs)
	one := func(raw []byte) (int64, bool) {
		id, err := strconv.ParseInt(string(bytes.Trim(raw, `"`)), 10, 64)
		return id, err == nil && id > 0
	}
	ref = bytes.TrimSpace(ref)
	if len(ref) > 0 && ref[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(ref, &raws); err != nil || len(raws) == 0 || len(raws) > maxAckIDs {
			return nil, bad
		}
		ids := make([]int64, len(raws))
		for i, r := range raws {
			id, ok := one(r)
			if !ok {
				return nil, bad
			}
			ids[i] = id
		}
		return ids, nil
	}
	id, ok := one(ref)
	if !ok {
		return nil, bad
	}
	return []int64{id}, nil
}
