package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/watchroom/watchroom/internal/alerts"
	"github.com/watchroom/watchroom/internal/ingest"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

// The claims (store.Claim) of the instances that lead among those sharing
// the database: the one that runs alert detection, and, with
// WATCHROOM_INGEST=elected, the one that ingests.
const (
	detectorLeadName = "alerts-detector"
	ingestLeadName   = "ingest"
)

// leadInterval is how often a standing-by instance tries to take the lead
// and how often the leader checks the connection holding it.
const leadInterval = time.Second

// pgElector elects one instance for a task (the claim name) through a
// PostgreSQL advisory lock (store.Claim): the instance holding it leads;
// PostgreSQL frees it when the leader's session ends, and another instance
// takes it within leadInterval.
type pgElector struct {
	st    *store.Store
	name  string // the claim: detectorLeadName or ingestLeadName
	label string
	every time.Duration
	log   *slog.Logger
}

var _ alerts.Elector = (*pgElector)(nil)

// Lead is alerts.Elector.
func (e *pgElector) Lead(ctx context.Context) (alerts.Term, error) {
	t, err := e.term(ctx)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// leadIngest is ingest.Config.Lead.
func (e *pgElector) leadIngest(ctx context.Context) (ingest.Term, error) {
	t, err := e.term(ctx)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// term blocks until this instance holds the claim, or ctx ends.
func (e *pgElector) term(ctx context.Context) (*pgTerm, error) {
	failLog := rate.Sometimes{First: 1, Interval: time.Minute}
	for {
		c, err := e.st.Claim(ctx, store.ClaimConfig{Label: e.label, CheckInterval: e.every}, e.log, e.name)
		if err == nil {
			return newPGTerm(c), nil
		}
		var taken *store.ClaimTakenError
		if !errors.As(err, &taken) && ctx.Err() == nil {
			failLog.Do(func() {
				e.log.Warn("cannot ask PostgreSQL for the lead; retrying (logged at most once a minute)", "lead", e.name, "err", err)
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

// checkpointSetting is where the detection leader keeps its checkpoint
// (alerts.Handover): "<seq> <unix nanoseconds>".
const checkpointSetting = "alerts_checkpoint"

// pgHandover is alerts.Handover over the store: the checkpoint in the
// settings table, the committed stream from the readings.
type pgHandover struct{ st *store.Store }

var _ alerts.Handover = pgHandover{}

func (h pgHandover) Checkpoint(ctx context.Context) (int64, time.Time, error) {
	v, err := h.st.Setting(ctx, checkpointSetting)
	if errors.Is(err, store.ErrNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	var seq, ns int64
	if _, err := fmt.Sscanf(v, "%d %d", &seq, &ns); err != nil {
		return 0, time.Time{}, nil // unreadable: as none, a cold start
	}
	return seq, time.Unix(0, ns), nil
}

func (h pgHandover) SaveCheckpoint(ctx context.Context, seq int64, at time.Time) error {
	return h.st.PutSetting(ctx, checkpointSetting, fmt.Sprintf("%d %d", seq, at.UnixNano()))
}

func (h pgHandover) LastReadingSeq(ctx context.Context) (int64, error) {
	return h.st.LastReadingSeq(ctx)
}

func (h pgHandover) ReadingsInSeqRange(ctx context.Context, from, to int64, limit int) ([]model.Reading, error) {
	return h.st.ReadingsInSeqRange(ctx, from, to, limit)
}
