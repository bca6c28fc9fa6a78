package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/model"
)

// Store is what the REST API reads and the login checks.
type Store interface {
	Ping(ctx context.Context) error
	User(ctx context.Context, name string) (model.User, error)
	Sensors(ctx context.Context) ([]model.Sensor, error)
	Readings(ctx context.Context, sensorID, metric string, from, to time.Time, limit int) ([]model.Reading, error)
	ReadingBuckets(ctx context.Context, sensorID, metric string, from, to time.Time, bucket time.Duration, limit int) ([]model.Bucket, error)
	Commands(ctx context.Context, sensorID string, limit int) ([]model.Command, error)
	// ExportReadings calls fn for each reading in key order, streaming.
	ExportReadings(ctx context.Context, sensorID, metric string, from, to time.Time, fn func(model.Reading) error) error
}

// Tokens issues, verifies and revokes login tokens (auth.Sessions).
type Tokens interface {
	Issue(ctx context.Context, user string, role model.Role) (string, time.Time, error)
	Verify(ctx context.Context, token string) (auth.Claims, error)
	Revoke(ctx context.Context, c auth.Claims) error
}

// Hub serves WebSocket connections and reports their statistics.
type Hub interface {
	Serve(ctx context.Context, ws *fws.Conn, opt hub.ServeOptions)
	Stats() hub.Stats
}

// ReadyCheck reports whether one dependency is usable; nil means ready.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config wires the App.
type Config struct {
	Store          Store
	Tokens         Tokens
	Hub            Hub
	Ready          []ReadyCheck
	Gatherer       prometheus.Gatherer
	Registerer     prometheus.Registerer
	AllowedOrigins []string     // empty: same host only
	Static         fs.FS        // the built dashboard; nil serves none
	Rooms          RoomService  // chat rooms REST; nil serves none
	Alerts         AlertService // alerts and rules REST; nil serves none
	Log            *slog.Logger
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For (the client address: login limits) and
	// X-Forwarded-Host (the same-host Origin rule) are believed. Empty:
	// none, the connection's address counts.
	TrustedProxies []string
	// TLS, when set, makes Serve speak HTTPS (and so wss:// on /ws).
	TLS *tls.Config
	// Now is the clock of the login limits and of the silences routes (a
	// duration_seconds counts from it); time.Now when nil.
	Now func() time.Time
	// LoginTracked bounds each table of the login limits (addresses,
	// accounts, known addresses of an account); 65536 when 0.
	LoginTracked int

	// BaseContext is handed to WebSocket connections; cancelling it is not
	// how they end (Hub.Shutdown is), it only carries values and deadlines.
	BaseContext context.Context

	// Devices serves the MQTT devices REST routes; nil serves none.
	Devices DeviceService
}

// App is the HTTP server.
type App struct {
	cfg    Config
	fiber  *fiber.App
	login  *loginGuard
	m      *httpMetrics
	export *exporter
}

// New builds the Fiber app and its routes.
func New(cfg Config) *App {
	if cfg.BaseContext == nil {
		cfg.BaseContext = context.Background()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &App{cfg: cfg, login: newLoginGuard(cfg.Now, cfg.LoginTracked), m: newHTTPMetrics(cfg.Registerer)}
	a.fiber = fiber.New(fiber.Config{
		AppName:               "watchroom",
		DisableStartupMessage: true,
		ErrorHandler:          a.errorHandler,
		BodyLimit:             64 << 10,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           120 * time.Second,
		// Also the limit on request headers (4 KiB, fasthttp's default).
		// A WebSocket keeps this buffer for its life (fasthttp hands it
		// to the upgraded connection), so it is per-connection memory.
		ReadBufferSize: 4096,
		// Proxy headers only from the configured proxies: Hostname() (the
		// same-host Origin rule) and IP() (the login limits) read the
		// connection otherwise, not X-Forwarded-* headers any client can
		// set. IP() takes the first valid address of the header, so the
		// proxy must set X-Forwarded-For, not append to the client's
		// (docs/deploy.md).
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             fiber.HeaderXForwardedFor,
		EnableIPValidation:      true,
		// Strings from Params, Query and the body stay valid after the
		// handler returns (fasthttp reuses its buffers otherwise): caches
		// such as the alert rules keep them.
		Immutable: true,
	})
	a.routes()
	return a
}

func (a *App) routes() {
	f := a.fiber
	f.Use(recover.New()) // a handler's panic fails its request, not the process
	f.Use(a.observe)
	f.Use(securityHeaders)
	f.Get("/healthz", a.healthz)
	f.Get("/readyz", a.readyz)
	// /metrics is not here: NewMetricsServer serves it on its own listener.

	f.Get("/ws", a.checkOrigin, websocket.New(func(c *websocket.Conn) {
		tokenInQuery := c.Query("token") != "" || c.Query("access_token") != "" || c.Query("jwt") != ""
		a.cfg.Hub.Serve(a.cfg.BaseContext, c.Conn, hub.ServeOptions{TokenInQuery: tokenInQuery, Addr: c.IP()})
	}, websocket.Config{
		// Origins are checked by checkOrigin; compression stays off so the
		// read limit counts real bytes (no decompression bombs).
		EnableCompression: false,
		// An idle connection holds its read buffer but no write buffer:
		// write buffers come from a pool shared by every connection and
		// are held only while a frame is being written. The read buffer
		// is small: it reads from the HTTP server's buffered reader,
		// which the upgraded connection keeps (fiber's ReadBufferSize).
		ReadBufferSize:  512,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
	}))

	api := f.Group("/api")
	api.Post("/login", a.postLogin)
	a.contractRoutes(api) // public: before requireAuth
	api.Use(a.requireAuth)
	api.Get("/me", a.getMe)
	api.Post("/logout", a.postLogout)
	api.Post("/refresh", a.postRefresh)
	api.Get("/sensors", a.getSensors)
	api.Get("/sensors/:id/readings", a.getReadings)
	api.Get("/commands", a.getCommands)
	api.Get("/stats", a.getStats)
	a.exportRoutes(api)
	if a.cfg.Rooms != nil {
		a.roomRoutes(api)
	}
	if a.cfg.Alerts != nil {
		a.alertRoutes(api)
	}
	if a.cfg.Devices != nil {
		a.deviceRoutes(api)
	}
	api.Use(func(c *fiber.Ctx) error {
		return apiError(fiber.StatusNotFound, "not_found", "no such API route: "+c.Method()+" "+c.Path())
	})

	if a.cfg.Static != nil {
		a.static(f)
	}
}

// Fiber returns the underlying app, for tests that need app.Test.
func (a *App) Fiber() *fiber.App { return a.fiber }

// Serve accepts HTTP connections on ln until Shutdown; HTTPS when the
// Config has TLS.
func (a *App) Serve(ln net.Listener) error {
	if a.cfg.TLS != nil {
		ln = tls.NewListener(ln, a.cfg.TLS)
	}
	if err := a.fiber.Listener(ln); err != nil {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends. Upgraded WebSocket connections are not Fiber's to close:
// the hub's Shutdown does that.
func (a *App) Shutdown(ctx context.Context) error {
	return a.fiber.ShutdownWithContext(ctx)
}

func (a *App) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (a *App) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{}
	ready := true
	for _, rc := range a.cfg.Ready {
		if err := rc.Check(ctx); err != nil {
			checks[rc.Name] = err.Error()
			ready = false
		} else {
			checks[rc.Name] = "ok"
		}
	}
	status := fiber.StatusOK
	if !ready {
		status = fiber.StatusServiceUnavailable
	}
	return c.Status(status).JSON(fiber.Map{"ready": ready, "checks": checks})
}

// apiErr is the JSON error every route returns.
type apiErr struct {
	Status  int
	Code    string
	Message string
}

func (e *apiErr) Error() string { return e.Code + ": " + e.Message }

func apiError(status int, code, msg string) error { return &apiErr{status, code, msg} }

func (a *App) errorHandler(c *fiber.Ctx, err error) error {
	var ae *apiErr
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiErr{Status: fe.Code, Code: codeForStatus(fe.Code), Message: fe.Message}
	default:
		a.cfg.Log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		ae = &apiErr{Status: fiber.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	return c.Status(ae.Status).JSON(fiber.Map{"error": fiber.Map{"code": ae.Code, "message": ae.Message}})
}

// LoadTLS reads a certificate chain and its key (PEM files) for Config.TLS.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("web: TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func codeForStatus(status int) string {
	switch status {
	case fiber.StatusBadRequest:
		return "bad_request"
	case fiber.StatusUnauthorized:
		return "unauthorized"
	case fiber.StatusForbidden:
		return "forbidden"
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too_large"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case fiber.StatusTooManyRequests:
		return "rate_limited"
	case fiber.StatusUpgradeRequired:
		return "upgrade_required"
	}
	if status >= 500 {
		return "internal"
	}
	return "error_" + strconv.Itoa(status)
}
