package web

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/model"
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
	a.reject(reasonBadOrigin, "origin", model.Truncate(origin, 80))
	return apiError(fiber.StatusForbidden, "forbidden", "origin "+origin+" may not open /ws; see WATCHROOM_ALLOWED_ORIGINS")
}

func (a *App) originAllowed(origin, host string) bool {
	if len(a.cfg.AllowedOrigins) > 0 {
		return slices.Contains(a.cfg.AllowedOrigins, strings.TrimSuffix(origin, "/"))
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// loginGuard slows password guessing in two ways, both in bounded memory
// (least recently used entries are evicted one at a time, never all at
// once, so flooding it with new addresses or names cannot reset an entry
// that is still in use):
//
//   - per client address: loginBurst attempts at once, then one per
//     loginEvery (a token bucket), whatever the outcome;
//   - per account: after accountFreeFailures failed attempts in a row
//     each further failure holds the account for a delay that doubles
//     from one second up to accountMaxDelay. While it is held, attempts
//     from addresses that have not logged in to it before are refused
//     unchecked. Addresses that have (within knownAddrTTL) are not held:
//     an attacker can make a real user wait at most accountMaxDelay per
//     failure, and never a user logging in from where they did before.
//     A success resets the count; so does accountForget without failure.
//
// The client address is the connection's, or X-Forwarded-For's when the
// connection comes from a proxy in WATCHROOM_TRUSTED_PROXIES (Fiber's
// IP()). State is per instance and lost on restart. Safe for concurrent
// use.
type loginGuard struct {
	now func() time.Time

	mu       sync.Mutex
	addrs    *simplelru.LRU[string, *rate.Limiter]
	accounts *simplelru.LRU[string, *accountState]
	known    *simplelru.LRU[knownKey, time.Time] // last success of an account from an address
}

type accountState struct {
	failures int       // failed attempts in a row
	last     time.Time // of the last failure
	until    time.Time // held until
}

type knownKey struct{ account, addr string }

const (
	loginEvery          = 3 * time.Second
	loginBurst          = 10
	accountFreeFailures = 5
	accountMaxDelay     = time.Minute
	accountForget       = 15 * time.Minute
	knownAddrTTL        = 30 * 24 * time.Hour
	// loginTracked bounds each of the three tables: about 100 bytes an
	// entry, a few MB in all.
	loginTracked = 65536
)

func newLoginGuard(now func() time.Time, size int) *loginGuard {
	if size <= 0 {
		size = loginTracked
	}
	g := &loginGuard{now: now}
	// NewLRU fails only for a size below 1.
	g.addrs, _ = simplelru.NewLRU[string, *rate.Limiter](size, nil)
	g.accounts, _ = simplelru.NewLRU[string, *accountState](size, nil)
	g.known, _ = simplelru.NewLRU[knownKey, time.Time](size, nil)
	return g
}

// allowAddr takes one attempt from addr's bucket; a refusal returns how
// long to wait.
func (g *loginGuard) allowAddr(addr string) (ok bool, retry time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	lim, found := g.addrs.Get(addr)
	if !found {
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		g.addrs.Add(addr, lim)
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused attempt does not push the next one back
		return false, d
	}
	return true, 0
}

// allowAccount reports whether account may be tried from addr now.
func (g *loginGuard) allowAccount(account, addr string) (ok bool, retry time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	st, found := g.accounts.Get(account)
	if !found || !now.Before(st.until) {
		return true, 0
	}
	if t, ok := g.known.Get(knownKey{account, addr}); ok && now.Sub(t) < knownAddrTTL {
		return true, 0
	}
	return false, st.until.Sub(now)
}

// failed records a failed attempt (wrong password or no such user) on
// account.
func (g *loginGuard) failed(account string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	st, found := g.accounts.Get(account)
	if !found {
		st = &accountState{}
		g.accounts.Add(account, st)
	}
	if now.Sub(st.last) >= accountForget {
		st.failures = 0
	}
	st.failures++
	st.last = now
	st.until = now.Add(accountDelay(st.failures))
}

// succeeded resets account and remembers addr as one it logs in from.
func (g *loginGuard) succeeded(account, addr string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accounts.Remove(account)
	g.known.Add(knownKey{account, addr}, now)
}

// accountDelay is how long an account is held after its n-th failure in a
// row: nothing for the first accountFreeFailures, then 1s, 2s, 4s, … up to
// accountMaxDelay.
func accountDelay(n int) time.Duration {
	if n <= accountFreeFailures {
		return 0
	}
	shift := n - accountFreeFailures - 1
	if shift >= 16 {
		return accountMaxDelay
	}
	return min(time.Second<<shift, accountMaxDelay)
}

// retryAfter is the Retry-After value for d: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(max(1, (d+time.Second-1)/time.Second)))
}

// securityHeaders go on every response: no MIME sniffing (a JSON error
// echoing input must never run as HTML) and no Referer leaving the
// dashboard (its URLs name rooms and sensors).
func securityHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Next()
}
