package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const (
	indexHTML = `<!doctype html><title>Watchroom</title><script src="/assets/app-abc123.js"></script>`
	appJS     = `console.log("watchroom")`
	secret    = "SECRET-OUTSIDE-THE-DASHBOARD"
)

func dashboardFS() fstest.MapFS {
	return fstest.MapFS{
		"index.html":            {Data: []byte(indexHTML)},
		"assets/app-abc123.js":  {Data: []byte(appJS)},
		"assets/app-abc123.css": {Data: []byte(`body{}`)},
		"favicon.svg":           {Data: []byte(`<svg/>`)},
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	e := newEnv(t, st, func(c *Config) { c.Static = dashboardFS() })
	const (
		noCache   = "no-cache"
		immutable = "public, max-age=31536000, immutable"
	)
	tests := []struct {
		name, path   string
		status       int
		body         string // for 200
		cacheControl string
		contentType  string // prefix
		index        bool   // CSP and X-Frame-Options expected
	}{
		{"root", "/", 200, indexHTML, noCache, "text/html", true},
		{"index.html", "/index.html", 200, indexHTML, noCache, "text/html", true},
		{"hashed asset", "/assets/app-abc123.js", 200, appJS, immutable, "text/javascript", false},
		{"hashed css", "/assets/app-abc123.css", 200, `body{}`, immutable, "text/css", false},
		{"other file", "/favicon.svg", 200, `<svg/>`, noCache, "image/svg+xml", false},
		{"missing asset", "/assets/missing.js", 404, "", "", "", false},
		{"missing file with extension", "/robots.txt", 404, "", "", "", false},
		{"client route", "/some/client/route", 200, indexHTML, noCache, "text/html", true},
		{"client route with query", "/sensors/s-1?range=1h", 200, indexHTML, noCache, "text/html", true},
		{"assets directory", "/assets", 200, indexHTML, noCache, "text/html", true},
		{"assets directory slash", "/assets/", 200, indexHTML, noCache, "text/html", true},
		{"dot dot", "/../index.html", 200, indexHTML, noCache, "text/html", true},
		{"encoded dot dot", "/%2e%2e/index.html", 404, "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, rawRequest(t, tc.path))
			if r.status != tc.status {
				t.Fatalf("GET %s: status %d, want %d; %s", tc.path, r.status, tc.status, r.body)
			}
			if tc.status != http.StatusOK {
				wantError(t, r, tc.status, "not_found", "no such file")
				return
			}
			if string(r.body) != tc.body {
				t.Errorf("GET %s: body %q, want %q", tc.path, r.body, tc.body)
			}
			if got := r.header.Get("Cache-Control"); got != tc.cacheControl {
				t.Errorf("GET %s: Cache-Control %q, want %q", tc.path, got, tc.cacheControl)
			}
			if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
				t.Errorf("GET %s: Content-Type %q, want %s", tc.path, got, tc.contentType)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
			}
			csp := r.header.Get("Content-Security-Policy")
			if tc.index != (csp != "") {
				t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
			}
			if tc.index && (!strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'")) {
				t.Errorf("GET %s: weak Content-Security-Policy %q", tc.path, csp)
			}
		})
	}

	t.Run("API and probes are not shadowed", func(t *testing.T) {
		wantError(t, e.do(t, http.MethodGet, "/api/sensors", "", nil), http.StatusUnauthorized, "unauthorized", "")
		wantError(t, e.do(t, http.MethodGet, "/api/nope.js", "", nil), http.StatusUnauthorized, "unauthorized", "")
		wantError(t, e.do(t, http.MethodGet, "/ws", "", nil), http.StatusUpgradeRequired, "upgrade_required", "WebSocket")
		if r := e.do(t, http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "ok") {
			t.Errorf("GET /healthz with static files: %s", r)
		}
	})

	t.Run("no static files", func(t *testing.T) {
		e := newEnv(t, st, nil)
		wantError(t, e.do(t, http.MethodGet, "/", "", nil), http.StatusNotFound, "not_found", "")
	})
}

// rawRequest builds a GET whose request line carries path exactly as given
// (httptest.NewRequest would parse and re-encode it).
func rawRequest(t *testing.T, path string) *http.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n")))
	if err != nil {
		t.Fatalf("request for %s: %v", path, err)
	}
	return req
}

// TestStaticTraversal serves a real directory and asks, over a real socket
// with the request line exactly as written, for a file beside it.
func TestStaticTraversal(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dist := filepath.Join(root, "dist")
	for name, data := range map[string]string{
		filepath.Join(root, "secret.txt"):                 secret,
		filepath.Join(root, "go.mod"):                     secret,
		filepath.Join(dist, "index.html"):                 indexHTML,
		filepath.Join(dist, "assets", "app-abc123.js"):    appJS,
		filepath.Join(dist, "assets", "sub", "x.js"):      appJS,
		filepath.Join(dist, "assets", "..", "escaped.js"): appJS, // i.e. dist/escaped.js
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, newStore(t), func(c *Config) { c.Static = os.DirFS(dist) })
	addr := serve(t, e.app)

	for _, p := range []string{
		"/../secret.txt",
		"/../go.mod",
		"/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/go.mod",
		"/..%2fsecret.txt",
		"/..%2Fgo.mod",
		"/assets/../../secret.txt",
		"/assets/%2e%2e/%2e%2e/secret.txt",
		"/assets/..%2f..%2fsecret.txt",
		"/..\\secret.txt",
		"/%5c..%5csecret.txt",
		"//../secret.txt",
		"/./../secret.txt",
		"/assets/sub/../../../secret.txt",
	} {
		t.Run(p, func(t *testing.T) {
			status, body := rawGet(t, addr, p)
			if strings.Contains(body, secret) {
				t.Fatalf("GET %s escaped the dashboard directory: %d %s", p, status, body)
			}
			if status >= 500 {
				t.Errorf("GET %s: status %d; %s", p, status, body)
			}
		})
	}

	// Directories are not files: with os.DirFS (and embed.FS) reading one
	// fails with an error that is neither ErrNotExist nor ErrInvalid.
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/assets", 200},     // a client route: index.html
		{"/assets/sub", 404}, // under assets/: a missing file
		{"/assets/app-abc123.js", 200},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body := rawGet(t, addr, tc.path)
			if status != tc.status {
				t.Errorf("GET %s: status %d, want %d; %s", tc.path, status, tc.status, body)
			}
		})
	}
}

// serve runs app on a free loopback port until the test ends.
func serve(t *testing.T, app *App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return ln.Addr().String()
}

// rawGet sends path verbatim in the request line, which net/http's client
// would clean or re-encode.
func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
