package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/alerts"
	"github.com/watchroom/watchroom/internal/store"
)

// detectorLeadName is the claim (store.Claim) of the instance that runs
// alert detection among those sharing the database.
const detectorLeadName = "alerts-detector"

// leadInterval is how often a standing-by instance tries to take the lead
// and how often the leader checks the connection holding it.
const leadInterval = time.Second

// pgElector elects the alert detector through a PostgreSQL advisory lock
// (store.Claim): the instance holding it leads; PostgreSQL frees it when
// the leader's session ends, and another instance takes it within
// leadInterval.
type pgElector struct {
	st    *store.Store
	label string
	every time.Duration
	log   *slog.Logger
}

var _ alerts.Elector = (*pgElector)(nil)

func (e *pgElector) Lead(ctx context.Context) (alerts.Term, error) {
	failLog := rate.Sometimes{First: 1, Interval: time.Minute}
	for {
		c, err := e.st.Claim(ctx, store.ClaimConfig{Label: e.label, CheckInterval: e.every}, e.log, detectorLeadName)
		if err == nil {
			return newPGTerm(c), nil
		}
		var taken *store.ClaimTakenError
		if !errors.As(err, &taken) && ctx.Err() == nil {
			failLog.Do(func() {
				e.log.Warn("alerts: cannot ask PostgreSQL for the detection lead; retrying (logged at most once a minute)", "err", err)
			})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.every):
		}
	}
}

// pgTerm is a lead held by a claim: Watch ends it when its connection is
// lost.
type pgTerm struct {
	lost   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func newPGTerm(c *store.Claim) *pgTerm {
	ctx, cancel := context.WithCancel(context.Background())
	t := &pgTerm{lost: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if c.Watch(ctx) != nil {
			close(t.lost)
		}
		c.Close()
	}()
	return t
}

func (t *pgTerm) Lost() <-chan struct{} { return t.lost }

func (t *pgTerm) Release() {
	t.cancel()
	<-t.done
}
