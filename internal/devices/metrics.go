package devices

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of watchroom_commands_total.
const (
	outcomeSuccess       = "success"
	outcomeError         = "error"
	outcomeTimeout       = "timeout"
	outcomePublishFailed = "publish_failed"
)

// Reasons of watchroom_command_responses_rejected_total.
const (
	reasonQueueFull      = "queue_full"      // the worker's queue was full
	reasonBadTopic       = "bad_topic"       // not <prefix>/<valid sensor id>/responses
	reasonTooLarge       = "too_large"       // payload over 16 KiB
	reasonMalformed      = "malformed"       // not JSON, or id missing or too long
	reasonBadStatus      = "bad_status"      // status not success or error
	reasonUnknownCommand = "unknown_command" // no such command
	reasonWrongDevice    = "wrong_device"    // answered on another sensor's topic
	reasonNotPending     = "not_pending"     // already answered or timed out
	reasonStoreError     = "store_error"     // the store failed; the command will time out
)

// Reasons of watchroom_command_notifications_dropped_total.
const reasonNotifyError = "notify_error"

type metrics struct {
	commands *prometheus.CounterVec
	latency  prometheus.Histogram
	pending  prometheus.Gauge
	rejected *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	// reloadErrs counts failed attempts to load the pending commands at
	// start; each is retried.
	reloadErrs prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_commands_total",
			Help: "Commands finished, by outcome (success, error, timeout, publish_failed).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "watchroom_command_latency_seconds",
			Help:    "Time from issuing a command to receiving its device's response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5ms .. ~10s
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_commands_pending",
			Help: "Commands waiting for a response or their timeout in this process.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_command_responses_rejected_total",
			Help: "Device responses dropped, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_command_notifications_dropped_total",
			Help: "Command outcomes stored but not handed to the user, by reason.",
		}, []string{"reason"}),
		reloadErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_command_reload_errors_total",
			Help: "Failed attempts to load the pending commands at start; each is retried with backoff.",
		}),
	}
	reg.MustRegister(m.commands, m.latency, m.pending, m.rejected, m.dropped, m.reloadErrs)
	// Export every series from the start, so rates and alerts see zeros.
	for _, o := range []string{outcomeSuccess, outcomeError, outcomeTimeout, outcomePublishFailed} {
		m.commands.WithLabelValues(o)
	}
	for _, r := range []string{reasonQueueFull, reasonBadTopic, reasonTooLarge, reasonMalformed, reasonBadStatus,
		reasonUnknownCommand, reasonWrongDevice, reasonNotPending, reasonStoreError} {
		m.rejected.WithLabelValues(r)
	}
	m.dropped.WithLabelValues(reasonNotifyError)
	return m
}
