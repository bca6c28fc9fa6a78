package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/backoff"
	"github.com/watchroom/watchroom/internal/model"
)

// SensorRegistry tells whether a sensor id is a registered, unrevoked
// device (the store's devices table). Registered mode asks it on a cache
// miss, from the pipeline goroutine, with a deadline
// (registryLookupTimeout).
type SensorRegistry interface {
	DeviceRegistered(ctx context.Context, id string) (bool, error)
}

// SeriesLister lists the series already stored (the sensors table); the
// pipeline seeds its set of known series from it before taking messages.
type SeriesLister interface {
	Sensors(ctx context.Context) ([]model.Sensor, error)
}

// Admission decides which decoded readings may reach the store. Its zero
// value admits everything (open mode, no cap on new series); serve always
// sets a cap.
type Admission struct {
	// Registry, when set, is registered mode: only readings of sensors it
	// knows as registered devices are admitted, the others are rejected
	// (ReasonUnregistered). nil is open mode.
	Registry SensorRegistry
	// RegistryTTL is how long a registry answer is cached, either way: a
	// device registered or revoked is noticed within it (default 10s).
	RegistryTTL time.Duration

	// Known seeds the set of known series at start; nil starts it empty.
	Known SeriesLister
	// NewSeriesRate caps how many series (sensor, metric) never seen
	// before may be created per second, NewSeriesBurst at once. A message
	// whose new series find no token is rejected (ReasonNewSeriesLimited).
	// A zero rate is no cap.
	NewSeriesRate  float64
	NewSeriesBurst int
	// MaxKnownSeries bounds the set of known series (default 1<<20).
	MaxKnownSeries int
}

// Defaults and bounds of admission.
const (
	DefaultRegistryTTL    = 10 * time.Second
	DefaultMaxKnownSeries = 1 << 20

	// registryLookupTimeout bounds one registry query: a miss never holds
	// the pipeline longer than this per attempt.
	registryLookupTimeout = 2 * time.Second
	// Queries for ids the cache has no answer for (never seen, or
	// unregistered last time) are limited to this rate, so that a flood of
	// invented ids costs at most this many queries a second; beyond it
	// their messages are rejected (ReasonLookupLimited). Re-checking an id
	// that was registered is never limited.
	registryLookupRate  = 100
	registryLookupBurst = 200
	// registryCacheMax bounds the cached answers (see remember).
	registryCacheMax = 100_000
)

// regEntry is a cached registry answer.
type regEntry struct {
	registered bool
	expires    time.Time
}

// admitter applies Admission. It belongs to the pipeline goroutine: no
// field needs a lock.
type admitter struct {
	registry SensorRegistry
	ttl      time.Duration
	cache    map[string]regEntry
	lookups  *rate.Limiter
	retry    backoff.Policy
	m        *metrics

	lister    SeriesLister
	known     map[seriesKey]struct{}
	maxKnown  int
	newSeries *rate.Limiter // nil: no cap
	fresh     []seriesKey   // scratch of admit

	log     *slog.Logger
	fullLog rate.Sometimes // the known set is full: one line a minute
}

func newAdmitter(a Admission, retry backoff.Policy, m *metrics, log *slog.Logger) *admitter {
	ad := &admitter{
		registry: a.Registry,
		ttl:      a.RegistryTTL,
		cache:    map[string]regEntry{},
		lookups:  rate.NewLimiter(registryLookupRate, registryLookupBurst),
		retry:    retry,
		m:        m,
		lister:   a.Known,
		known:    map[seriesKey]struct{}{},
		maxKnown: a.MaxKnownSeries,
		log:      log,
		fullLog:  rate.Sometimes{First: 1, Interval: time.Minute},
	}
	if ad.ttl <= 0 {
		ad.ttl = DefaultRegistryTTL
	}
	if ad.maxKnown <= 0 {
		ad.maxKnown = DefaultMaxKnownSeries
	}
	if a.NewSeriesRate > 0 {
		ad.newSeries = rate.NewLimiter(rate.Limit(a.NewSeriesRate), max(a.NewSeriesBurst, 1))
	}
	return ad
}

// seed loads the stored series into the known set, retrying with backoff
// while the store fails. It returns ctx.Err() if ctx ends first.
func (a *admitter) seed(ctx context.Context) error {
	if a.lister == nil {
		return nil
	}
	var ss []model.Sensor
	err := a.retry.Retry(ctx, func(ctx context.Context) error {
		var err error
		ss, err = a.lister.Sensors(ctx)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		a.log.Warn("ingest: loading the known series failed; retrying, no message is taken meanwhile",
			"err", err, "attempt", attempt, "retry_in", wait)
	})
	if err != nil {
		return err
	}
	for _, s := range ss {
		if len(a.known) >= a.maxKnown {
			break
		}
		a.known[seriesKey{s.ID, s.Metric}] = struct{}{}
	}
	a.m.knownSeries.Set(float64(len(a.known)))
	a.log.Info("ingest: known series loaded", "series", len(a.known))
	return nil
}

// admit decides on the readings of one message (one sensor): "" admits
// them, otherwise the reject reason. now is the message's receipt time
// (the injected clock). It returns ctx.Err() if ctx ended while the
// registry could not be asked: then nothing is decided.
func (a *admitter) admit(ctx context.Context, rs []model.Reading, now time.Time) (string, error) {
	if len(rs) == 0 {
		return "", nil
	}
	if a.registry != nil {
		reason, err := a.checkRegistered(ctx, rs[0].SensorID, now)
		if reason != "" || err != nil {
			return reason, err
		}
	}
	a.fresh = a.fresh[:0]
	for i := range rs {
		k := seriesKey{rs[i].SensorID, rs[i].Metric}
		if _, ok := a.known[k]; !ok {
			a.fresh = append(a.fresh, k) // metrics of one message are distinct (Decode)
		}
	}
	if len(a.fresh) == 0 {
		return "", nil
	}
	// All or nothing: a message is acked as a whole, so half of one is not
	// stored. A message with more new series than the burst never passes.
	if a.newSeries != nil && !a.newSeries.AllowN(now, len(a.fresh)) {
		return ReasonNewSeriesLimited, nil
	}
	if len(a.known)+len(a.fresh) > a.maxKnown {
		// Not remembered: these series take a token with every message.
		a.fullLog.Do(func() {
			a.log.Warn("ingest: the set of known series is full; series beyond it count as new with every message (at most one line a minute)",
				"max", a.maxKnown)
		})
		return "", nil
	}
	for _, k := range a.fresh {
		a.known[k] = struct{}{}
	}
	a.m.knownSeries.Set(float64(len(a.known)))
	return "", nil
}

// checkRegistered answers from the cache, or asks the registry. A failed
// query is retried with backoff (each attempt bounded by
// registryLookupTimeout): like a failed commit, the pipeline then waits and
// nothing is acknowledged. Only an end of ctx stops it.
func (a *admitter) checkRegistered(ctx context.Context, id string, now time.Time) (string, error) {
	e, cached := a.cache[id]
	if cached && now.Before(e.expires) {
		if e.registered {
			return "", nil
		}
		return ReasonUnregistered, nil
	}
	// An id registered last time is re-checked freely; any other costs a
	// token of the lookup budget.
	if !(cached && e.registered) && !a.lookups.AllowN(now, 1) {
		return ReasonLookupLimited, nil
	}
	var ok bool
	err := a.retry.Retry(ctx, func(ctx context.Context) error {
		lctx, cancel := context.WithTimeout(ctx, registryLookupTimeout)
		defer cancel()
		var err error
		ok, err = a.registry.DeviceRegistered(lctx, id)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		a.m.registryErrors.Inc()
		a.log.Warn("ingest: asking the device registry failed; retrying, nothing is acknowledged meanwhile",
			"err", err, "sensor", clip(id), "attempt", attempt, "retry_in", wait)
	})
	if err != nil {
		return "", fmt.Errorf("ingest: registry lookup: %w", err)
	}
	a.remember(id, ok, now)
	if !ok {
		return ReasonUnregistered, nil
	}
	return "", nil
}

// remember caches an answer. When the cache is full, expired answers go
// first, then the negative ones (invented ids), then all.
func (a *admitter) remember(id string, registered bool, now time.Time) {
	if _, ok := a.cache[id]; !ok && len(a.cache) >= registryCacheMax {
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= registryCacheMax {
			for k, e := range a.cache {
				if !e.registered {
					delete(a.cache, k)
				}
			}
		}
		if len(a.cache) >= registryCacheMax {
			clear(a.cache)
		}
	}
	a.cache[id] = regEntry{registered: registered, expires: now.Add(a.ttl)}
}
