package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/tlstest"
)

// The attacks of the security review, each against the real App on a real
// listener over a real store, and each refused.

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLoginGuardAddresses(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()

	t.Run("burst, then one per interval", func(t *testing.T) {
		g := newLoginGuard(clk.Now, 0)
		for i := range loginBurst {
			if ok, _ := g.allowAddr("192.0.2.1"); !ok {
				t.Fatalf("attempt %d refused, want %d allowed at once", i+1, loginBurst)
			}
		}
		ok, wait := g.allowAddr("192.0.2.1")
		if ok || wait <= 0 || wait > loginEvery {
			t.Fatalf("attempt %d: ok %v, wait %v; want refused for at most %v", loginBurst+1, ok, wait, loginEvery)
		}
		if ok, _ := g.allowAddr("192.0.2.2"); !ok {
			t.Errorf("another address is refused")
		}
	})

	// The old table forgot every address once it held 10,000: an attacker
	// with that many addresses (or spoofed headers) got a fresh burst for
	// a blocked one. Now only the least recently used entry goes.
	t.Run("20,000 other addresses do not reset a blocked one", func(t *testing.T) {
		g := newLoginGuard(clk.Now, 0)
		for range loginBurst {
			g.allowAddr("192.0.2.1")
		}
		for i := range 20000 {
			g.allowAddr(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
		}
		if ok, _ := g.allowAddr("192.0.2.1"); ok {
			t.Fatalf("the blocked address was let through after 20,000 others")
		}
	})

	t.Run("a full table evicts the least recently used entry only", func(t *testing.T) {
		const size = 100
		g := newLoginGuard(clk.Now, size)
		for range loginBurst {
			g.allowAddr("blocked")
		}
		// Far more addresses than the table holds, while the blocked one
		// keeps trying: it stays the most recently used, and blocked.
		for i := range 10 * size {
			g.allowAddr("a" + strconv.Itoa(i))
			if ok, _ := g.allowAddr("blocked"); ok {
				t.Fatalf("blocked address let through after %d others", i+1)
			}
		}
		g.mu.Lock()
		n := g.addrs.Len()
		_, oldKept := g.addrs.Peek("a" + strconv.Itoa(10*size-size))
		_, newestKept := g.addrs.Peek("a" + strconv.Itoa(10*size-1))
		g.mu.Unlock()
		if n != size {
			t.Errorf("%d addresses remembered, want the bound %d", n, size)
		}
		if oldKept || !newestKept {
			t.Errorf("eviction: an old entry kept %v, the newest kept %v; want least recently used out", oldKept, newestKept)
		}
	})
}

func TestAccountDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {accountFreeFailures, 0},
		{accountFreeFailures + 1, time.Second},
		{accountFreeFailures + 2, 2 * time.Second},
		{accountFreeFailures + 6, 32 * time.Second},
		{accountFreeFailures + 7, accountMaxDelay},
		{accountFreeFailures + 100, accountMaxDelay},
	} {
		t.Run(strconv.Itoa(tc.failures), func(t *testing.T) {
			if got := accountDelay(tc.failures); got != tc.want {
				t.Errorf("accountDelay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}

// proxyEnv is an App that trusts 127.0.0.1 as its reverse proxy, on a real
// listener, with a clock the test moves.
type proxyEnv struct {
	*testEnv
	addr string
	clk  *fakeClock
}

func newProxyEnv(t *testing.T, trusted []string) *proxyEnv {
	t.Helper()
	st := newStore(t)
	addUser(t, st, "alice", model.RoleAnalyst)
	clk := newFakeClock()
	e := newEnv(t, st, func(c *Config) {
		c.TrustedProxies = trusted
		c.Now = clk.Now
		c.Static = fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>w</title>")}}
	})
	return &proxyEnv{testEnv: e, addr: serve(t, e.app), clk: clk}
}

// login posts credentials as JSON with X-Forwarded-For xff ("" for none).
func (e *proxyEnv) login(t *testing.T, xff, user, password string) response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/api/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return doHTTP(t, http.DefaultClient, req)
}

func doHTTP(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func wantRetryAfter(t *testing.T, r response, atMost time.Duration) {
	t.Helper()
	s, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || s < 1 || time.Duration(s)*time.Second > atMost+time.Second {
		t.Errorf("Retry-After = %q, want whole seconds from 1 to %v", r.header.Get("Retry-After"), atMost)
	}
}

func TestLoginThrottleOverHTTP(t *testing.T) {
	t.Parallel()

	t.Run("address limit with Retry-After; a trusted proxy's X-Forwarded-For names the client", func(t *testing.T) {
		e := newProxyEnv(t, []string{"127.0.0.1/32"})
		for i := range loginBurst {
			// A name each: the account limit stays out of the way.
			if r := e.login(t, "198.51.100.7", "user"+strconv.Itoa(i), "wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %s", i+1, r)
			}
		}
		r := e.login(t, "198.51.100.7", "alice", testPassword)
		wantError(t, r, http.StatusTooManyRequests, "rate_limited", "from your address")
		wantRetryAfter(t, r, loginEvery)
		// Another client behind the same proxy is its own address.
		if r := e.login(t, "198.51.100.8", "alice", testPassword); r.status != http.StatusOK {
			t.Errorf("another client behind the proxy: %s", r)
		}
		e.clk.Add(loginEvery)
		if r := e.login(t, "198.51.100.7", "alice", testPassword); r.status != http.StatusOK {
			t.Errorf("after waiting Retry-After: %s", r)
		}
	})

	t.Run("untrusted X-Forwarded-For is ignored", func(t *testing.T) {
		e := newProxyEnv(t, nil)
		for i := range loginBurst {
			e.login(t, "203.0.113."+strconv.Itoa(i), "nobody", "wrong")
		}
		// A new forged address per attempt does not buy a new bucket.
		r := e.login(t, "203.0.113.200", "alice", testPassword)
		wantError(t, r, http.StatusTooManyRequests, "rate_limited", "from your address")
		wantRetryAfter(t, r, loginEvery)
	})

	t.Run("per account: exponential delay across addresses, not for known ones", func(t *testing.T) {
		e := newProxyEnv(t, []string{"127.0.0.1/32"})
		// alice logs in once from her usual address.
		if r := e.login(t, "192.0.2.10", "alice", testPassword); r.status != http.StatusOK {
			t.Fatalf("first login: %s", r)
		}
		// An attacker guesses from a new address for each attempt, which
		// the address limit alone would never stop.
		attacker := 0
		guess := func(password string) response {
			attacker++
			return e.login(t, fmt.Sprintf("203.0.113.%d", attacker), "alice", password)
		}
		for i := range accountFreeFailures + 1 {
			if r := guess("wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %s", i+1, r)
			}
		}
		// Held for a second now: even the right password is refused
		// unchecked from an address alice never used.
		r := guess(testPassword)
		wantError(t, r, http.StatusTooManyRequests, "rate_limited", "for this account")
		wantRetryAfter(t, r, time.Second)
		// alice, from where she logged in before, is not held.
		if r := e.login(t, "192.0.2.10", "alice", testPassword); r.status != http.StatusOK {
			t.Fatalf("alice from her known address while the account is held: %s", r)
		}
		// Her success reset the count; the delays double again from one
		// second and never exceed accountMaxDelay.
		var last time.Duration
		for i := range accountFreeFailures + 10 {
			e.clk.Add(last)
			if r := guess("wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("guess %d after waiting %v: %s", i+1, last, r)
			}
			last = accountDelay(i + 1)
		}
		r = guess(testPassword)
		wantError(t, r, http.StatusTooManyRequests, "rate_limited", "for this account")
		wantRetryAfter(t, r, accountMaxDelay)
		if last != accountMaxDelay {
			t.Errorf("delay after %d failures = %v, want the cap %v", accountFreeFailures+10, last, accountMaxDelay)
		}
		// A real user from a new address waits at most the cap.
		e.clk.Add(accountMaxDelay)
		if r := e.login(t, "192.0.2.99", "alice", testPassword); r.status != http.StatusOK {
			t.Errorf("alice from a new address after the cap: %s", r)
		}
		if got := testutil.ToFloat64(e.app.m.rejected.WithLabelValues(reasonLoginAccountHeld)); got != 2 {
			t.Errorf("login_account_held counted %v times, want 2", got)
		}
	})

	t.Run("unknown accounts are held like real ones", func(t *testing.T) {
		e := newProxyEnv(t, []string{"127.0.0.1/32"})
		for i := range accountFreeFailures + 1 {
			e.login(t, fmt.Sprintf("203.0.113.%d", i), "mallory", "wrong")
		}
		r := e.login(t, "203.0.113.100", "mallory", "wrong")
		wantError(t, r, http.StatusTooManyRequests, "rate_limited", "for this account")
	})
}

func TestLoginTakesOnlyJSON(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, nil)
	for _, tc := range []struct{ name, contentType, body string }{
		// What a form on another site can send without a preflight.
		{"form", "application/x-www-form-urlencoded", url.Values{"username": {"alice"}, "password": {testPassword}}.Encode()},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--x--\r\n"},
		{"text/plain carrying JSON", "text/plain", `{"username":"alice","password":"` + testPassword + `"}`},
		{"no content type", "", `{"username":"alice","password":"` + testPassword + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/api/login", strings.NewReader(tc.body))
			req.Header.Set("Origin", "https://evil.example.com")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			} else {
				req.Header["Content-Type"] = nil
			}
			r := doHTTP(t, http.DefaultClient, req)
			wantError(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "application/json")
			if strings.Contains(string(r.body), "token") {
				t.Errorf("a token in the refusal: %s", r.body)
			}
		})
	}
	t.Run("JSON with a charset", func(t *testing.T) {
		b := `{"username":"alice","password":"` + testPassword + `"}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/api/login", strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if r := doHTTP(t, http.DefaultClient, req); r.status != http.StatusOK {
			t.Errorf("%s", r)
		}
	})
}

func TestSecurityHeadersAndNoPublicMetrics(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, nil)
	tok := e.token(t, "alice", model.RoleViewer)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"dashboard", http.MethodGet, "/", "", http.StatusOK},
		{"API", http.MethodGet, "/api/me", tok, http.StatusOK},
		{"API error", http.MethodGet, "/api/me", "", http.StatusUnauthorized},
		{"unknown API route", http.MethodGet, "/api/nope", tok, http.StatusNotFound},
		{"health", http.MethodGet, "/healthz", "", http.StatusOK},
		{"login refused", http.MethodPost, "/api/login", "", http.StatusUnsupportedMediaType},
		{"plain GET of /ws", http.MethodGet, "/ws", "", http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+e.addr+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			r := doHTTP(t, http.DefaultClient, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy = %q, want no-referrer", got)
			}
			if tc.path == "/" && !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("the dashboard lost its CSP: %q", r.header.Get("Content-Security-Policy"))
			}
		})
	}

	t.Run("/metrics is not on the public listener", func(t *testing.T) {
		r := doHTTP(t, http.DefaultClient, mustRequest(t, http.MethodGet, "http://"+e.addr+"/metrics"))
		if strings.Contains(string(r.body), "watchroom_") || strings.Contains(string(r.body), "go_goroutines") {
			t.Fatalf("GET /metrics on the public listener answers metrics: %d %.200s", r.status, r.body)
		}
		// The metrics listener has them.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := NewMetricsServer(e.reg)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		r = doHTTP(t, http.DefaultClient, mustRequest(t, http.MethodGet, "http://"+ln.Addr().String()+"/metrics"))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "watchroom_http_requests_total") {
			t.Errorf("metrics listener: %d %.200s", r.status, r.body)
		}
		r = doHTTP(t, http.DefaultClient, mustRequest(t, http.MethodGet, "http://"+ln.Addr().String()+"/api/me"))
		if r.status != http.StatusNotFound {
			t.Errorf("the metrics listener serves more than /metrics: GET /api/me = %d", r.status)
		}
	})
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := tlstest.SelfSigned(t, t.TempDir())
	tlsCfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	e := newEnv(t, st, func(c *Config) { c.TLS = tlsCfg })
	addr := serve(t, e.app)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	t.Run("HTTPS", func(t *testing.T) {
		r := doHTTP(t, client, mustRequest(t, http.MethodGet, "https://"+addr+"/healthz"))
		if r.status != http.StatusOK || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET https /healthz: %s %v", r, r.header)
		}
	})
	t.Run("plain HTTP is not served", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("plain HTTP answered 200 on the TLS listener")
			}
		}
	})
	t.Run("wss upgrade", func(t *testing.T) {
		d := fws.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 5 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, resp, err := d.DialContext(ctx, "wss://"+addr+"/ws", nil)
		if err != nil {
			t.Fatalf("dial wss: %v (%s)", err, statusOf(resp))
		}
		ws.Close()
	})
	t.Run("bad files", func(t *testing.T) {
		if _, err := LoadTLS(keyFile, certFile); err == nil {
			t.Errorf("LoadTLS with the files swapped: no error")
		}
	})
}
