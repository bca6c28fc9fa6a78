package backoff

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	errDown := errors.New("down")
	for _, tc := range []struct {
		name      string
		failures  int // op fails this many times, then succeeds
		waits     []time.Duration
		cancelled bool // ctx ends during the last failure's wait
	}{
		{"first attempt", 0, nil, false},
		{"doubles up to max", 5, []time.Duration{100, 200, 400, 500, 500}, false},
		{"ends with ctx", 3, []time.Duration{100, 200, 400}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fired := make(chan time.Time)
			close(fired)
			var waits, failedWaits []time.Duration
			p := Policy{Min: 100, Max: 500, After: func(d time.Duration) <-chan time.Time {
				waits = append(waits, d)
				if tc.cancelled && len(waits) == tc.failures {
					cancel()
					return nil // never fires: only ctx can end the wait
				}
				return fired
			}}
			calls := 0
			err := p.Retry(ctx, func(context.Context) error {
				calls++
				if calls <= tc.failures {
					return errDown
				}
				return nil
			}, func(attempt int, err error, wait time.Duration) {
				if attempt != len(failedWaits)+1 || !errors.Is(err, errDown) {
					t.Errorf("failed(%d, %v), want attempt %d and errDown", attempt, err, len(failedWaits)+1)
				}
				failedWaits = append(failedWaits, wait)
			})
			if tc.cancelled {
				if !errors.Is(err, context.Canceled) || calls != tc.failures {
					t.Errorf("Retry = %v after %d calls, want context.Canceled after %d", err, calls, tc.failures)
				}
			} else if err != nil || calls != tc.failures+1 {
				t.Errorf("Retry = %v after %d calls, want nil after %d", err, calls, tc.failures+1)
			}
			if !slices.Equal(waits, tc.waits) || !slices.Equal(failedWaits, tc.waits) {
				t.Errorf("waits %v (reported %v), want %v", waits, failedWaits, tc.waits)
			}
		})
	}
}

func TestRetryCancelledDuringOp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	err := Policy{Min: 1, Max: 1}.Retry(ctx, func(context.Context) error {
		cancel()
		return errors.New("interrupted")
	}, func(int, error, time.Duration) { t.Error("failed called after ctx ended") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Retry = %v, want context.Canceled", err)
	}
}
