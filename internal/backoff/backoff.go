// Package backoff retries an operation against a store that may be
// briefly unreachable: exponential waits from Min, doubling up to Max,
// until the operation succeeds or the context ends. The alert detector and
// the device commands load their start-up state with it.
//
// Retry runs on the caller's goroutine and shares nothing: a Policy value
// may be used by any number of goroutines at once.
package backoff

import (
	"context"
	"time"
)

// Policy is how long to wait between attempts.
type Policy struct {
	Min time.Duration // the first wait
	Max time.Duration // the longest wait
	// After is the clock of the waits; time.After when nil. Tests make it
	// fire at once.
	After func(time.Duration) <-chan time.Time
}

// Retry calls op until it returns nil, and then returns nil. After each
// failure it calls failed with the attempt number (from 1), op's error and
// the wait before the next attempt, then waits. When ctx ends (during op
// or a wait) it returns ctx.Err() without calling failed.
func (p Policy) Retry(ctx context.Context, op func(context.Context) error, failed func(attempt int, err error, wait time.Duration)) error {
	after := p.After
	if after == nil {
		after = time.After
	}
	wait := p.Min
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed(attempt, err, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-after(wait):
		}
		wait = min(2*wait, p.Max)
	}
}
