package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// EventStore lists revocations in commit order (session_events).
type EventStore interface {
	LastSessionEvent(ctx context.Context) (int64, error)
	SessionEventsAfter(ctx context.Context, after int64, limit int) ([]model.SessionEvent, error)
}

// Watcher follows revocations made anywhere (this instance, another one,
// or `watchroom user …` on the command line) by polling the store, and
// hands each to its callback: Sessions forgets the user's cached state and
// the hub closes the sockets whose token is no longer valid.
type Watcher struct {
	st    EventStore
	every time.Duration
	on    func(ctx context.Context, e model.SessionEvent)
	log   *slog.Logger
}

// DefaultWatchInterval is how often a Watcher polls: revoked sessions are
// closed within about this long.
const DefaultWatchInterval = 500 * time.Millisecond

// NewWatcher returns a Watcher calling on for each revocation, in order,
// from Run's goroutine.
func NewWatcher(st EventStore, every time.Duration, on func(ctx context.Context, e model.SessionEvent), log *slog.Logger) *Watcher {
	if every <= 0 {
		every = DefaultWatchInterval
	}
	return &Watcher{st: st, every: every, on: on, log: log}
}

// Run follows revocations from now until ctx is done. It starts after the
// newest existing event: sockets opened after a revocation were checked
// against it already. Store errors are logged and retried at the next
// tick.
func (w *Watcher) Run(ctx context.Context) error {
	var last int64
	var err error
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		if last, err = w.st.LastSessionEvent(ctx); err == nil {
			break
		}
		w.log.Warn("auth: cannot read session events; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			es, err := w.st.SessionEventsAfter(ctx, last, 1000)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if !failing {
					w.log.Warn("auth: cannot read session events; revocations wait until the database answers", "err", fmt.Errorf("%w", err))
				}
				failing = true
				break
			}
			failing = false
			for _, e := range es {
				w.on(ctx, e)
				last = e.ID
			}
			if len(es) < 1000 {
				break
			}
		}
	}
}
