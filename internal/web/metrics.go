package web

import (
	"errors"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
)

// Reasons of watchroom_http_rejected_total.
const (
	reasonNoToken          = "no_token"
	reasonBadToken         = "bad_token"
	reasonForbidden        = "forbidden"
	reasonBadOrigin        = "bad_origin"
	reasonLoginFailed      = "login_failed"
	reasonLoginNotJSON     = "login_not_json"
	reasonLoginAddrLimited = "login_rate_limited" // the address's bucket is empty
	reasonLoginAccountHeld = "login_account_held" // the account's delay after failures
)

var rejectReasons = []string{reasonNoToken, reasonBadToken, reasonForbidden, reasonBadOrigin,
	reasonLoginFailed, reasonLoginNotJSON, reasonLoginAddrLimited, reasonLoginAccountHeld}

type httpMetrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	// rejectLog bounds the log lines of rejections: the first of each
	// reason, then one a second. Filled once in newHTTPMetrics, read only.
	rejectLog map[string]*rate.Sometimes
}

// newHTTPMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_http_rejected_total", Help: "HTTP requests refused before reaching a handler, by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.rejected)
	m.rejectLog = map[string]*rate.Sometimes{}
	for _, r := range rejectReasons {
		m.rejectLog[r] = &rate.Sometimes{First: 1, Interval: time.Second}
	}
	return m
}

// reject counts a refused request under reason and logs it at a bounded
// rate; attrs say more (never a password or token).
func (a *App) reject(reason string, attrs ...any) {
	a.m.rejected.WithLabelValues(reason).Inc()
	if s := a.m.rejectLog[reason]; s != nil {
		s.Do(func() { a.cfg.Log.Warn("request refused", append([]any{"reason", reason}, attrs...)...) })
	}
}

// NewMetricsServer serves /metrics of g and the Go profiler under
// /debug/pprof/ (and nothing else) for the separate metrics listener,
// WATCHROOM_METRICS_ADDR: the metrics tell who is connected and how busy
// the server is, and a profile can be asked to cost seconds of CPU, so
// both stay off the public port. The App never routes /debug/pprof.
func NewMetricsServer(g prometheus.Gatherer) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	// net/http/pprof's handlers, mounted here rather than through its
	// init, which registers them on http.DefaultServeMux.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// observe counts every request by its route pattern (not its path, which
// would let clients create unbounded label values).
func (a *App) observe(c *fiber.Ctx) error {
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		// The error handler runs after this middleware returns; predict its status.
		status = fiber.StatusInternalServerError
		var ae *apiErr
		var fe *fiber.Error
		if errors.As(err, &ae) {
			status = ae.Status
		} else if errors.As(err, &fe) {
			status = fe.Code
		}
	}
	route := c.Route().Path
	if c.Route().Method == "USE" || route == "/" && c.Path() != "/" {
		route = "other"
	}
	a.m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	return err
}
