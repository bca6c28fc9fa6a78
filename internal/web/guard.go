package web

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// checkOrigin refuses WebSocket upgrades from other sites (cross-site
// WebSocket hijacking): a browser always sends Origin, and it must be in
// the allow-list, or, when the list is empty, name the host the request
// was sent to. Clients that send no Origin are not browsers and are let
// through; they still need a token.
func (a *App) checkOrigin(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return apiError(fiber.StatusUpgradeRequired, "upgrade_required", "/ws is a WebSocket endpoint")
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || a.originAllowed(origin, c.Hostname()) {
		return c.Next()
	}
	a.m.rejected.WithLabelValues("bad_origin").Inc()
	return apiError(fiber.StatusForbidden, "forbidden", "origin "+origin+" may not open /ws; see WATCHROOM_ALLOWED_ORIGINS")
}

func (a *App) originAllowed(origin, host string) bool {
	if len(a.cfg.AllowedOrigins) > 0 {
		return slices.Contains(a.cfg.AllowedOrigins, strings.TrimSuffix(origin, "/"))
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// loginLimiter slows password guessing: each client address may try
// loginBurst times at once, then one attempt per loginEvery.
type loginLimiter struct {
	mu sync.Mutex
	by map[string]*rate.Limiter
}

const (
	loginEvery    = 3 * time.Second
	loginBurst    = 10
	loginMaxHosts = 10000
)

func newLoginLimiter() *loginLimiter { return &loginLimiter{by: map[string]*rate.Limiter{}} }

func (l *loginLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.by[ip]
	if lim == nil {
		if len(l.by) >= loginMaxHosts {
			// Bounded memory: forgetting everyone at once only ever grants
			// a fresh burst, it never locks anyone out.
			clear(l.by)
		}
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.by[ip] = lim
	}
	return lim.Allow()
}
