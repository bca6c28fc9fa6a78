package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// LifecycleConfig is the data lifecycle policy (docs/storage.md).
type LifecycleConfig struct {
	RetentionRaw time.Duration // raw partitions ending before now minus this are dropped
	MaxRawBytes  int64         // 0: no size budget
	Retention1m  time.Duration // 1-minute rollups
	Retention1h  time.Duration // 1-hour rollups
	AheadDays    int           // daily partitions created ahead of today
	Interval     time.Duration // between maintenance rounds
}

// Lifecycle runs the maintenance of readings and rollups: partitions
// created ahead, raw retention, rollup retention. Every instance runs one; the store
// methods it calls serialise in PostgreSQL (advisory lock, IF-covered
// checks), so rounds of several instances do the work once.
type Lifecycle struct {
	st     *Store
	cfg    LifecycleConfig
	now    func() time.Time
	log    *slog.Logger
	errLog rate.Sometimes // a failing round logs once a minute at most

	created    prometheus.Counter
	dropped    *prometheus.CounterVec // partitions and row deletes, by kind and reason
	droppedRow *prometheus.CounterVec
	droppedB   *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

// NewLifecycle returns the maintenance task of st; now is its clock.
func NewLifecycle(st *Store, cfg LifecycleConfig, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) *Lifecycle {
	l := &Lifecycle{
		st: st, cfg: cfg, now: now, log: log,
		errLog: rate.Sometimes{First: 1, Interval: time.Minute},
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_data_partitions_created_total",
			Help: "Partitions created by this instance (daily readings, monthly 1-minute rollups, yearly 1-hour rollups).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_data_drops_total",
			Help: "Retention drops by this instance (a partition, or the rows of a default partition), by kind (raw, 1m, 1h) and reason (age, size).",
		}, []string{"kind", "reason"}),
		droppedRow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_data_dropped_rows_total",
			Help: "Rows removed by retention (estimated for whole partitions), by kind and reason.",
		}, []string{"kind", "reason"}),
		droppedB: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_data_dropped_bytes_total",
			Help: "Bytes of partitions dropped by retention, by kind and reason.",
		}, []string{"kind", "reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_data_maintenance_failures_total",
			Help: "Failed data maintenance steps, by step (partitions, raw, rollups); retried next round.",
		}, []string{"step"}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(l.created, l.dropped, l.droppedRow, l.droppedB, l.failures)
	return l
}

// Run does a round at once, then one per tick until ctx is done. tick is
// the clock's ticker channel (time.Ticker.C outside tests).
func (l *Lifecycle) Run(ctx context.Context, tick <-chan time.Time) error {
	for {
		l.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// Round does one round of maintenance at l.now(): create the partitions
// ahead (first: rows must have somewhere to go), then drop raw data and
// rollups past retention. A failed step is counted and logged (at a
// bounded rate) and the others still run.
func (l *Lifecycle) Round(ctx context.Context) {
	now := l.now()
	keepFrom := func(keep time.Duration) time.Time {
		if keep <= 0 {
			return ExportFrom // kept forever: every row waiting gets a partition
		}
		return now.Add(-keep)
	}
	created, err := l.st.EnsurePartitions(ctx, now, l.cfg.AheadDays, keepFrom(l.cfg.RetentionRaw))
	l.fail("partitions", err)
	rollups := []struct {
		kind string
		keep time.Duration
	}{{"1m", l.cfg.Retention1m}, {"1h", l.cfg.Retention1h}}
	for _, r := range rollups {
		// One month, one year ahead: rollup partitions are long.
		c, err := l.st.EnsureRollupPartitions(ctx, r.kind, now, 1, keepFrom(r.keep))
		l.fail("partitions", err)
		created = append(created, c...)
	}
	l.created.Add(float64(len(created)))
	if len(created) > 0 {
		l.log.Info("created partitions", "partitions", created)
	}
	if l.cfg.RetentionRaw > 0 {
		drops, err := l.st.DropRaw(ctx, now, now.Add(-l.cfg.RetentionRaw), l.cfg.MaxRawBytes)
		l.fail("raw", err)
		for _, d := range drops {
			l.count(d)
		}
		if err == nil && l.cfg.MaxRawBytes > 0 {
			l.checkBudget(ctx, now)
		}
	}
	for _, r := range rollups {
		if r.keep <= 0 {
			continue
		}
		drops, err := l.st.DropRollups(ctx, now, r.kind, now.Add(-r.keep))
		l.fail("rollups", err)
		for _, d := range drops {
			l.count(d)
		}
	}
}

// checkBudget warns when the partitions still exceed the size budget after
// a round: only today's and later partitions are left, so the budget is
// smaller than a day of readings.
func (l *Lifecycle) checkBudget(ctx context.Context, now time.Time) {
	ps, err := l.st.Partitions(ctx)
	if err != nil {
		return
	}
	var total int64
	for _, p := range ps {
		if !p.Default {
			total += p.Bytes
		}
	}
	if total > l.cfg.MaxRawBytes {
		l.errLog.Do(func() {
			l.log.Warn("raw readings exceed WATCHROOM_MAX_RAW_BYTES with only current partitions left; raise it",
				"bytes", total, "max_bytes", l.cfg.MaxRawBytes)
		})
	}
}

func (l *Lifecycle) count(d Drop) {
	l.dropped.WithLabelValues(d.Kind, d.Reason).Inc()
	l.droppedRow.WithLabelValues(d.Kind, d.Reason).Add(float64(d.Rows))
	l.droppedB.WithLabelValues(d.Kind, d.Reason).Add(float64(d.Bytes))
	// At most a few lines per round (one per dropped partition or table),
	// and rounds are WATCHROOM_DATA_MAINTENANCE_INTERVAL apart.
	l.log.Info("retention dropped data", "kind", d.Kind, "reason", d.Reason, "target", d.Target,
		"upto", d.Upto, "rows", d.Rows, "bytes", d.Bytes)
}

func (l *Lifecycle) fail(step string, err error) {
	if err == nil {
		return
	}
	l.failures.WithLabelValues(step).Inc()
	l.errLog.Do(func() { l.log.Error("data maintenance failed; retrying next round", "step", step, "err", err) })
}
