package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// repeatWindow is how long a repeated mochi warning is held back. mochi
// warns once per message in some overload paths ("client store quota
// reached"), which at thousands of messages a second would bury every
// other log line.
const repeatWindow = 10 * time.Second

// quietHandler routes mochi's logs into Watchroom's logger quietly: its
// Info chatter (hooks added, listener attached, server started) is dropped,
// a client connection ending with an error (logged by mochi as a Warn with
// an empty message) becomes Debug, and any other warning or error passes at
// most once per repeatWindow per message, with the number held back since.
// Safe for concurrent use: handlers derived with WithAttrs/WithGroup share
// one limiter.
type quietHandler struct {
	next slog.Handler
	lim  *repeatLimiter
}

func newQuietHandler(next slog.Handler, now func() time.Time) *quietHandler {
	if now == nil {
		now = time.Now
	}
	return &quietHandler{next: next, lim: &repeatLimiter{now: now, last: make(map[string]*repeatState)}}
}

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		d := slog.NewRecord(r.Time, slog.LevelDebug, "mqtt client connection ended", r.PC)
		r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
		return h.next.Handle(ctx, d)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	ok, held := h.lim.allow(r.Message)
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats_suppressed", held))
	}
	return h.next.Handle(ctx, r)
}

func (h *quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &quietHandler{next: h.next.WithAttrs(attrs), lim: h.lim}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(name), lim: h.lim}
}

// repeatLimiter lets one record per message text through per repeatWindow.
// Its map is keyed by mochi's constant message strings, so it stays small.
type repeatLimiter struct {
	now func() time.Time

	mu   sync.Mutex
	last map[string]*repeatState
}

type repeatState struct {
	at   time.Time // when a record with this message last passed
	held int       // records held back since
}

// allow reports whether a record with message msg may pass now and, if so,
// how many were held back since the last one passed.
func (l *repeatLimiter) allow(msg string) (ok bool, held int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, seen := l.last[msg]
	if !seen {
		l.last[msg] = &repeatState{at: now}
		return true, 0
	}
	if now.Sub(st.at) < repeatWindow {
		st.held++
		return false, 0
	}
	held = st.held
	st.at, st.held = now, 0
	return true, held
}
