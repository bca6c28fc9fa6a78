package hub

import "github.com/prometheus/client_golang/prometheus"

// Disconnect reasons, the values of the reason label.
const (
	reasonClientClosed = "client_closed"
	reasonSlowConsumer = "slow_consumer"
	reasonAuthFailed   = "auth_failed"
	reasonAuthTimeout  = "auth_timeout"
	reasonReadError    = "read_error"
	reasonTooBig       = "too_big"
	reasonWriteError   = "write_error"
	reasonShutdown     = "shutdown"
	reasonTokenExpired = "token_expired"
	reasonPongTimeout  = "pong_timeout"
	reasonWriteTimeout = "write_timeout" // a frame could not be written within WriteTimeout
	reasonRevoked      = "session_revoked"
	// A live message the client got already in a resume replay (a queue
	// drop reason, not a disconnect).
	reasonReplayed = "already_replayed"
	// Refused at connect: the per-user or per-address cap (4029).
	reasonTooManyForUser = "too_many_for_user"
	reasonTooManyForAddr = "too_many_for_address"
)

type metrics struct {
	connections     prometheus.Gauge
	connects        prometheus.Counter
	disconnects     *prometheus.CounterVec
	messagesIn      *prometheus.CounterVec
	messagesOut     *prometheus.CounterVec
	framesOut       prometheus.Counter
	errorsOut       *prometheus.CounterVec
	queueDrops      *prometheus.CounterVec
	reliableFailed  prometheus.Counter
	connectDuration prometheus.Histogram
	thinned         prometheus.Counter
	gaps            prometheus.Counter
	resumes         *prometheus.CounterVec
	relayDropped    prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_ws_connections", Help: "Authenticated WebSocket connections open now."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_connects_total", Help: "WebSocket connections that authenticated."}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_disconnects_total", Help: "WebSocket connections ended, by reason."}, []string{"reason"}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_messages_in_total", Help: "Client messages received, by type."}, []string{"type"}),
		messagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_messages_out_total", Help: "Server messages queued for clients, by type."}, []string{"type"}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_frames_out_total", Help: "WebSocket frames written (a batch frame carries several messages)."}),
		errorsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_errors_total", Help: "Error replies sent to clients, by code."}, []string{"code"}),
		queueDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_queue_drops_total", Help: "Messages not delivered because the connection's send queue was full or the connection was closing, by reason."}, []string{"reason"}),
		reliableFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_reliable_store_errors_total", Help: "Acked deliveries that could not be stored (the sender got an error)."}),
		connectDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "watchroom_ws_connection_duration_seconds", Help: "How long authenticated connections lasted.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		thinned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_readings_thinned_total", Help: "Readings not sent to a connection past its queue's high-water mark (a newer value of the series was sent instead, after a gap message)."}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_gaps_total", Help: "Gap messages sent: each ends one period of thinning on one connection."}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_ws_resumes_total", Help: "Resume requests, by outcome (resumed, too_old, too_many, bad_request, error)."}, []string{"outcome"}),
		relayDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ws_relayed_frames_dropped_total", Help: "Frames from other instances that could not be delivered (malformed)."}),
	}
	reg.MustRegister(m.connections, m.connects, m.disconnects, m.messagesIn, m.messagesOut,
		m.framesOut, m.errorsOut, m.queueDrops, m.reliableFailed, m.connectDuration,
		m.thinned, m.gaps, m.resumes, m.relayDropped)
	return m
}
