package hub

import (
	"context"
	"encoding/json"
	"net"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/watchroom/watchroom/internal/protocol"
	"golang.org/x/time/rate"
)

// ServeOptions describe the upgrade request.
type ServeOptions struct {
	// TokenInQuery is set when the upgrade URL carried a token: it is
	// refused, since URLs end up in logs.
	TokenInQuery bool
	// Addr is the client's address (behind trusted proxies, the one they
	// forwarded), for the per-address connection cap; empty: not capped.
	Addr string
}

// setSendBuffer sets SO_SNDBUF on the TCP connection under c: c may be
// fasthttp's hijacked connection (UnsafeConn) or a TLS one (NetConn). It
// reports whether it found one.
func setSendBuffer(c net.Conn, n int) bool {
	for range 4 {
		switch x := c.(type) {
		case interface{ SetWriteBuffer(int) error }:
			return x.SetWriteBuffer(n) == nil
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return false
		}
	}
	return false
}

// pendingLimit bounds the unacknowledged deliveries sent on connect; the
// rest follow on the next connection once these are acked.
const pendingLimit = 500

// Serve runs one WebSocket connection until it ends. It must be called
// from the upgrade handler and blocks for the life of the connection.
func (h *Hub) Serve(ctx context.Context, ws *websocket.Conn, opt ServeOptions) {
	ws.SetReadLimit(h.cfg.ReadLimit)
	if h.cfg.SendBuffer > 0 {
		setSendBuffer(ws.NetConn(), h.cfg.SendBuffer)
	}
	c, reason, msg := h.authenticate(ctx, ws, opt)
	if c == nil {
		h.m.disconnects.WithLabelValues(reason).Inc()
		h.rejectAuth(ws, msg)
		return
	}
	// auth_ok is queued before the connection is registered, so it is the
	// first frame the client gets: once registered, broadcasts may queue
	// readings, chat and presence at any moment, and a client ignores what
	// comes before auth_ok.
	c.reply("auth_ok", nil, authOK(c.user, c.role, c.expires))
	if c.awaitingResume {
		// The client announced a resume: hold live messages from the
		// start, so none is sent before the replay (see resume.go).
		c.hold()
	}
	if ok, reason := h.register(c); !ok {
		h.m.disconnects.WithLabelValues(reason).Inc()
		code, text := protocol.CloseGoingAway, "server shutting down"
		if reason != reasonShutdown {
			code, text = protocol.CloseTooMany, "too many connections"
			h.rejectWith(ws, code, text, mustEncode("error", nil, map[string]string{"code": protocol.CodeTooMany,
				"message": "too many open connections for this user or address; close some first"}))
			return
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		return
	}
	c.scheduleExpiry()
	defer c.stopExpiry()
	if c.awaitingResume {
		stop := h.afterFunc(resumeWait, c.giveUpResume)
		defer stop()
	}
	if h.afterRegister != nil {
		h.afterRegister()
	}
	defer h.wg.Done()
	h.m.connects.Inc()
	h.m.connections.Inc()
	h.stats.active.Add(1)

	readerDone := make(chan struct{})
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writeLoop(readerDone) }()

	h.sendPending(ctx, c)

	c.extendReadDeadline()
	ws.SetPongHandler(func(string) error { c.extendReadDeadline(); return nil })
	c.readLoop(ctx)
	close(readerDone)
	<-writerDone
	_ = ws.Close()

	h.unregister(c)
	h.m.connections.Dec()
	h.stats.active.Add(-1)
	d := h.now().Sub(c.since)
	h.m.connectDuration.Observe(d.Seconds())
	h.stats.closedConns.Add(1)
	h.stats.closedNanos.Add(int64(d))
}

// authenticate waits for the first frame, which must be a valid auth
// message. On failure it returns the metric reason and the message for the
// client. No other goroutine touches ws yet, so writing here is safe.
func (h *Hub) authenticate(ctx context.Context, ws *websocket.Conn, opt ServeOptions) (*conn, string, string) {
	if opt.TokenInQuery {
		return nil, reasonAuthFailed, "tokens in the URL are refused; send {\"type\":\"auth\",\"data\":{\"token\":...}} as the first message"
	}
	_ = ws.SetReadDeadline(time.Now().Add(h.cfg.AuthTimeout))
	kind, b, err := ws.ReadMessage()
	if err != nil {
		if isTimeout(err) {
			return nil, reasonAuthTimeout, "no auth message within " + h.cfg.AuthTimeout.String()
		}
		return nil, reasonReadError, ""
	}
	if kind != websocket.TextMessage {
		return nil, reasonAuthFailed, "the first message must be a JSON auth message"
	}
	req, perr := parseRequest(b)
	if perr != nil || req.Type != "auth" {
		return nil, reasonAuthFailed, "the first message must be {\"type\":\"auth\",\"data\":{\"token\":...}}"
	}
	var d struct {
		Token  string `json:"token"`
		Resume bool   `json:"resume"`
	}
	if err := json.Unmarshal(req.Data, &d); err != nil || d.Token == "" {
		return nil, reasonAuthFailed, "auth needs data.token"
	}
	claims, err := h.auth.Verify(ctx, d.Token)
	if err != nil {
		return nil, reasonAuthFailed, "invalid, expired or revoked token"
	}
	c := &conn{
		h: h, ws: ws, user: claims.User, role: claims.Role, expires: claims.ExpiresAt, addr: opt.Addr,
		since:    h.now(),
		limiter:  rate.NewLimiter(rate.Limit(h.cfg.Rate), h.cfg.Burst),
		send:     newSendQueue(),
		closing:  make(chan struct{}),
		thinKick: make(chan struct{}, 1),
	}
	c.filter.Store(allSensors)
	c.claims.Store(&claims)
	c.awaitingResume = d.Resume
	return c, "", ""
}

func (h *Hub) rejectAuth(ws *websocket.Conn, msg string) {
	if msg == "" {
		return // the connection is already gone
	}
	h.rejectWith(ws, protocol.CloseAuthFailed, "unauthorized", mustEncode("auth_error", nil, map[string]string{"message": msg}))
}

// rejectWith writes last and a close frame with code to a connection that
// was never registered (no writer goroutine runs), then waits briefly for
// the client's answer.
func (h *Hub) rejectWith(ws *websocket.Conn, code int, text string, last []byte) {
	deadline := time.Now().Add(time.Second)
	_ = ws.SetWriteDeadline(deadline)
	_ = ws.WriteMessage(websocket.TextMessage, last)
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline)
	// Give the client a moment to read the close frame before the socket goes.
	_ = ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
}

// sendPending queues, as one item, the messages still waiting for this
// user's ack.
func (h *Hub) sendPending(ctx context.Context, c *conn) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ds, err := h.deliveries.PendingDeliveries(ctx, c.user, pendingLimit)
	if err != nil {
		h.log.Error("load pending deliveries", "user", c.user, "err", err)
		return
	}
	if len(ds) == 0 {
		return
	}
	msgs := make([][]byte, len(ds))
	for i, d := range ds {
		msgs[i] = encodeDelivery(d)
	}
	if c.enqueueMsg(outMsg{msgs: msgs}) {
		for _, d := range ds {
			h.m.messagesOut.WithLabelValues(d.Type).Inc()
		}
	}
}
