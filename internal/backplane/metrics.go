package backplane

import "github.com/prometheus/client_golang/prometheus"

// Reasons of watchroom_backplane_dropped_total. A dropped batch is not
// lost for the clients: the instances that miss it see a gap and read it
// from PostgreSQL.
const (
	reasonQueueFull        = "queue_full"         // the delivery queue was full
	reasonPublishQueueFull = "publish_queue_full" // the publish queue was full: not sent to the others
	reasonPublishFailed    = "publish_failed"     // the broker did not confirm it in time: maybe not sent
	reasonMalformed        = "malformed"          // a received message did not decode
	reasonStale            = "stale"              // a received part of a batch delivered already, or seen already
)

type metrics struct {
	published   prometheus.Counter
	received    prometheus.Counter
	delivered   prometheus.Counter
	dropped     map[string]prometheus.Counter
	gaps        prometheus.Counter
	gapsFilled  prometheus.Counter
	gapReadings prometheus.Counter
	fillErrors  prometheus.Counter
	connected   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "watchroom_backplane_dropped_total",
		Help: "Backplane messages or batches dropped, by reason; the instances missing one fill the gap from PostgreSQL.",
	}, []string{"reason"})
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_published_total",
			Help: "Messages (parts of committed batches) published to the other instances and confirmed by the broker.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_received_total",
			Help: "Messages received from other instances.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_delivered_batches_total",
			Help: "Batches handed to this instance's hub and alert detection, in seq order (this instance's own included).",
		}),
		dropped: map[string]prometheus.Counter{},
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_gaps_total",
			Help: "Seqs still missing when the hold time ran out, looked up in PostgreSQL.",
		}),
		gapsFilled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_gaps_filled_total",
			Help: "Missing seqs PostgreSQL had readings of (the others were rolled back or stored nothing new).",
		}),
		gapReadings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_gap_readings_total",
			Help: "Readings delivered from PostgreSQL to fill gaps.",
		}),
		fillErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_backplane_fill_errors_total",
			Help: "Gap fills that failed (PostgreSQL unreachable): the missing seqs were skipped; clients get them by resume or REST.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_backplane_connected",
			Help: "1 while the backplane client is connected to the broker and subscribed, else 0.",
		}),
	}
	for _, r := range []string{reasonQueueFull, reasonPublishQueueFull, reasonPublishFailed, reasonMalformed, reasonStale} {
		m.dropped[r] = dropped.WithLabelValues(r)
	}
	reg.MustRegister(m.published, m.received, m.delivered, dropped, m.gaps, m.gapsFilled, m.gapReadings, m.fillErrors, m.connected)
	return m
}
