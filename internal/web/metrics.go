package web

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_http_rejected_total", Help: "HTTP requests refused before reaching a handler, by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.rejected)
	return m
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
