package alerts

import "github.com/prometheus/client_golang/prometheus"

// Reasons of watchroom_alerts_dropped_total.
const (
	reasonTooManySeries = "too_many_series" // a new sensor metric beyond Config.MaxSeries: not evaluated
	reasonNotReady      = "not_ready"       // readings beyond Config.MaxPending before the start-up state was loaded
	reasonPostFailed    = "post_failed"     // stored but not posted to room alerts (clients see it over REST)
	reasonShutdown      = "shutdown"        // changes not stored before the shutdown deadline
	reasonBacklogFull   = "backlog_full"    // a resolve and re-open folded away while the store was failing
	// a rules_changed or silence message not sent (stored all the same:
	// clients see it over REST)
	reasonBroadcastFailed = "broadcast_failed"
)

// Reasons of watchroom_alerts_readings_ignored_total.
const (
	// a batch already evaluated: reflected in the statistics loaded at
	// start, or replayed from the previous leader before it came live
	reasonEvaluated = "already_evaluated"
	reasonStandby   = "standby" // another instance leads detection (Config.Elector)
)

type metrics struct {
	opened    *prometheus.CounterVec
	resolved  *prometheus.CounterVec
	updated   *prometheus.CounterVec
	acked     *prometheus.CounterVec
	coalesced prometheus.Counter
	latency   *prometheus.HistogramVec
	dropped   *prometheus.CounterVec
	ignored   *prometheus.CounterVec
	late      prometheus.Counter
	storeErrs prometheus.Counter
	pending   prometheus.Gauge
	series    prometheus.Gauge
	unwatched prometheus.Counter
	flapping  *prometheus.CounterVec
	silences  *prometheus.CounterVec
	silenced  *prometheus.CounterVec
	leader    prometheus.Gauge
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_opened_total", Help: "Alerts opened, by kind and severity."}, []string{"kind", "severity"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_resolved_total",
			Help: "Alerts resolved, by kind, severity and by whom (system: by themselves; user: alert_resolve)."},
			[]string{"kind", "severity", "by"}),
		updated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_updated_total",
			Help: "Breach updates of live alerts stored and posted (after coalescing), by kind."}, []string{"kind"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_acknowledged_total", Help: "Alerts acknowledged, by kind."}, []string{"kind"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_alerts_breaches_coalesced_total",
			Help: "Breaches of a live alert folded into an update not yet stored (count stays exact)."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "watchroom_alert_detection_seconds",
			Help: "Time until an alert opened, escalated or resolved by a reading is posted, " +
				"from the reading's evaluation (from=evaluated) or from its timestamp (from=reading).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms .. ~8s
		}, []string{"from"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_dropped_total",
			Help: "Readings not evaluated or alert changes not delivered, by reason."}, []string{"reason"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_alerts_readings_out_of_order_total",
			Help: "Readings evaluated although older than their series' newest (committed out of time order, as readings spread over a share group are)."}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_readings_ignored_total",
			Help: "Readings deliberately not evaluated, by reason."}, []string{"reason"}),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_alerts_store_errors_total", Help: "Failed attempts to store an alert change (each is retried)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_alerts_pending_changes", Help: "Alert changes decided but not yet stored and posted."}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_alerts_series", Help: "Sensor metrics tracked by alert detection."}),
		unwatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_alerts_offline_unwatched_total",
			Help: "Silent spells not reported offline because the series was not watched: fewer than 10 readings, no stale rule, not a registered device."}),
		flapping: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_flapping_total",
			Help: "Alerts kept open because they opened too often in a short time (flapping), by kind."}, []string{"kind"}),
		silences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_silences_total",
			Help: "Silences created, ended early by someone, and expired (reached their until), by event."}, []string{"event"}),
		silenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_alerts_silenced_total",
			Help: "Alerts opened while a silence covered them (stored and shown, not announced), by kind."}, []string{"kind"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_alerts_leader",
			Help: "1 while this instance runs alert detection (always on a single instance; the elected one with a share group), else 0."}),
	}
	reg.MustRegister(m.opened, m.resolved, m.updated, m.acked, m.coalesced, m.latency, m.dropped, m.ignored, m.late,
		m.storeErrs, m.pending, m.series, m.unwatched, m.flapping, m.silences, m.silenced, m.leader)
	for _, r := range []string{reasonTooManySeries, reasonNotReady, reasonPostFailed, reasonShutdown, reasonBacklogFull,
		reasonBroadcastFailed} {
		m.dropped.WithLabelValues(r)
	}
	for _, e := range []string{silenceCreated, silenceEnded, silenceExpired} {
		m.silences.WithLabelValues(e)
	}
	m.ignored.WithLabelValues(reasonEvaluated)
	m.ignored.WithLabelValues(reasonStandby)
	return m
}
