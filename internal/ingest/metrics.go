package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of a failed insert attempt: the values of the reason label of
// watchroom_ingest_flush_errors_total.
const (
	FlushError   = "error"   // the store returned an error
	FlushTimeout = "timeout" // the attempt ran past Config.CommitTimeout
)

// RefusedPastRetention is the reason label of watchroom_readings_refused_total
// for readings the store refused as older than its raw horizon
// (model.InsertResult.PastRetention).
const RefusedPastRetention = "past_retention"

// metrics are the collectors of one Ingest. Counters and histograms are
// safe for concurrent use; rejected holds one child per reason so the hot
// path does no label lookup.
type metrics struct {
	received     prometheus.Counter
	ingested     prometheus.Counter
	duplicate    prometheus.Counter
	conflict     prometheus.Counter
	restamped    prometheus.Counter
	refused      prometheus.Counter // readings, reason past_retention
	rejected     map[string]prometheus.Counter
	batchSize    prometheus.Histogram
	flushSeconds prometheus.Histogram
	flushErrors  map[string]prometheus.Counter // by FlushError, FlushTimeout
	queueFull    prometheus.Counter
	connected    prometheus.Gauge
	connLost     prometheus.Counter
	leader       prometheus.Gauge // with Config.Lead: 1 while this instance ingests

	registryErrors prometheus.Counter // failed device registry queries (registered mode)
	knownSeries    prometheus.Gauge   // series in the admission's known set
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchroom_readings_rejected_total",
		Help: "MQTT messages rejected by the decoder or by admission (acknowledged and dropped), by reason.",
	}, []string{"reason"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchroom_readings_refused_total",
		Help: "Readings acknowledged but not stored, by reason: past_retention (older than the raw horizon, in a minute or hour whose raw readings retention removed, where a repeat cannot be told from a new reading).",
	}, []string{"reason"})
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_mqtt_messages_received_total",
			Help: "MQTT messages handed to ingest by the client library.",
		}),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_readings_ingested_total",
			Help: "Readings inserted into the store (new rows).",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_readings_duplicate_total",
			Help: "Readings the store already had with the same value (redeliveries after a reconnect or restart).",
		}),
		conflict: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_readings_conflict_total",
			Help: "Readings not stored because their key (sensor, metric, ts) holds another value; the first committed value stays.",
		}),
		restamped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_readings_restamped_total",
			Help: "Readings without ts whose receipt stamp was taken in the store and that were stored a few microseconds later.",
		}),
		refused:  refused.WithLabelValues(RefusedPastRetention),
		rejected: map[string]prometheus.Counter{},
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "watchroom_ingest_batch_size",
			Help:    "Readings per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 .. 16384
		}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "watchroom_ingest_flush_seconds",
			Help:    "Time from the first insert attempt of a batch to its commit, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		flushErrors: map[string]prometheus.Counter{},
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ingest_queue_full_total",
			Help: "Messages the MQTT handler had to wait for because the ingest queue was full.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_mqtt_connected",
			Help: "1 while connected to the broker and subscribed, else 0.",
		}),
		connLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_mqtt_connection_lost_total",
			Help: "Connections to the broker lost (each is followed by reconnect attempts).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_ingest_leader",
			Help: "1 while this instance ingests (always on a single instance or in a share group; the elected one with WATCHROOM_INGEST=elected), else 0.",
		}),
		registryErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_ingest_registry_errors_total",
			Help: "Failed device registry queries in registered mode (each is retried; nothing is acknowledged meanwhile).",
		}),
		knownSeries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_ingest_known_series",
			Help: "Series (sensor, metric) ingest knows: stored before the start or admitted since; others count as new.",
		}),
	}
	for _, r := range rejectReasons() {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	flushErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchroom_ingest_flush_errors_total",
		Help: "Failed insert attempts by reason (error, or timeout: no answer within the commit timeout); each is retried and nothing is acknowledged meanwhile.",
	}, []string{"reason"})
	for _, r := range []string{FlushError, FlushTimeout} {
		m.flushErrors[r] = flushErrors.WithLabelValues(r)
	}
	reg.MustRegister(
		m.received, m.ingested, m.duplicate, m.conflict, m.restamped, refused, rejected, m.batchSize, m.flushSeconds,
		flushErrors, m.queueFull, m.connected, m.connLost, m.leader, m.registryErrors, m.knownSeries,
	)
	return m
}
