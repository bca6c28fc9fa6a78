package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Sessions on open connections: a connection ends when its token expires,
// unless the client sent a fresh token with another auth message first,
// and when its session is revoked anywhere (Recheck).

func authOK(user string, role model.Role, expires time.Time) map[string]any {
	return map[string]any{"user": user, "role": role, "expires_at": protocol.FormatTime(expires)}
}

// scheduleExpiry (re)arms the timer that closes the connection with 4001
// "token expired" when its token expires. Safe from any goroutine.
func (c *conn) scheduleExpiry() {
	cl := c.claims.Load()
	c.expiryMu.Lock()
	defer c.expiryMu.Unlock()
	if c.expiryStop != nil {
		c.expiryStop()
	}
	c.expiryStop = c.h.afterFunc(cl.ExpiresAt.Sub(c.h.now()), func() {
		if c.claims.Load() != cl {
			return // a newer token was sent meanwhile
		}
		c.failWith(protocol.CloseAuthFailed, "token expired", reasonTokenExpired,
			mustEncode("auth_error", nil, map[string]string{"message": "token expired; log in again"}))
	})
}

// stopExpiry stops the expiry timer when the connection ends.
func (c *conn) stopExpiry() {
	c.expiryMu.Lock()
	defer c.expiryMu.Unlock()
	if c.expiryStop != nil {
		c.expiryStop()
	}
}

// reauth serves an auth message on an open connection: a fresh token of
// the same user replaces the current one (role and expiry included) and
// is answered with auth_ok. A bad token, or one of another user, is an
// error reply and changes nothing: the connection lives until its current
// token expires.
func (c *conn) reauth(ctx context.Context, req envelope) {
	var d struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(req.Data, &d); err != nil || d.Token == "" {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeBadRequest, "auth needs data.token"))
		return
	}
	cl, err := c.h.auth.Verify(ctx, d.Token)
	if err != nil {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeForbidden, "invalid, expired or revoked token"))
		return
	}
	if cl.User != c.user {
		c.replyError(req.ID, protocol.Errorf(protocol.CodeForbidden, "the token is %s's; a connection cannot change user", cl.User))
		return
	}
	c.role, c.expires = cl.Role, cl.ExpiresAt
	c.claims.Store(&cl)
	c.scheduleExpiry()
	c.reply("auth_ok", req.ID, authOK(cl.User, cl.Role, cl.ExpiresAt))
}

// Recheck checks the session of every connection of user and closes, with
// 4001 "session revoked", those whose token is no longer valid. It is
// called for each revocation seen (auth.Watcher), whichever instance or
// command made it. A store error keeps the connections: they are checked
// again at the next revocation, and their token still expires.
func (h *Hub) Recheck(ctx context.Context, user string) {
	for _, c := range h.userConns(user) {
		err := h.auth.Check(ctx, *c.claims.Load())
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrRevoked), errors.Is(err, auth.ErrBadToken):
			c.failWith(protocol.CloseAuthFailed, "session revoked", reasonRevoked,
				mustEncode("auth_error", nil, map[string]string{"message": "session revoked; log in again"}))
		default:
			h.log.Warn("recheck session", "user", user, "err", err)
		}
	}
}
