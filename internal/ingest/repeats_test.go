package ingest

import (
	"slices"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// TestOwnRepeats: after a failed attempt, what the retry finds stored with
// the same value is pushed too (that attempt may have committed it
// unseen); conflicts, readings refused as past retention and
// receipt-stamped readings are not.
func TestOwnRepeats(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	r := func(sensor string, sec int, receipt bool) model.Reading {
		return model.Reading{SensorID: sensor, Metric: "t", TS: at.Add(time.Duration(sec) * time.Second), Value: 1, Receipt: receipt}
	}
	fresh, repeat, conflict, stamped, old := r("a", 1, false), r("b", 2, false), r("c", 3, false), r("d", 4, true), r("e", -86400*40, false)
	moved := stamped
	moved.TS = moved.TS.Add(time.Microsecond)
	res := model.InsertResult{Seq: 42, Fresh: []model.Reading{fresh, moved}, Duplicates: 1, Conflicts: []model.Conflict{{Reading: conflict, Stored: 2}},
		PastRetention: []model.Reading{old}}
	got := ownRepeats([]model.Reading{fresh, repeat, conflict, stamped, old}, res)
	keys := make([]string, len(got))
	for i, x := range got {
		keys[i] = x.ResumeKey()
	}
	want := []string{fresh.ResumeKey(), moved.ResumeKey(), repeat.ResumeKey()}
	if !slices.Equal(keys, want) {
		t.Errorf("pushed %q, want %q", keys, want)
	}
	if got[2].Seq != 42 {
		t.Errorf("a repeat pushed with seq %d, want the batch's, 42", got[2].Seq)
	}
	all := model.InsertResult{Fresh: []model.Reading{fresh}}
	if got := ownRepeats([]model.Reading{fresh}, all); len(got) != 1 {
		t.Errorf("all fresh: %v", got)
	}
}

// seqSink is a pipeSink that also hears of batches that stored nothing new.
type seqSink struct {
	pipeSink
	skipped chan int64
}

func (s *seqSink) SkipSeq(seq int64) { s.skipped <- seq }

// A batch of redeliveries stores nothing new, but its seq is used up: a
// SeqSink hears of it (the backplane must not wait for that seq), a plain
// sink hears nothing.
func TestPipelineTellsSeqSinksOfEmptyBatches(t *testing.T) {
	t.Parallel()
	st := &pipeStore{result: func(rs []model.Reading) model.InsertResult {
		return model.InsertResult{Seq: 7, Duplicates: len(rs)}
	}}
	sink := &seqSink{skipped: make(chan int64, 1)}
	h := startPipeline(t, Config{FlushInterval: time.Millisecond}, st, func(p *pipeline) {
		sink.ev = st.ev
		p.sinks = append(p.sinks, sink)
	})
	h.sendReadings(1)
	select {
	case seq := <-sink.skipped:
		if seq != 7 {
			t.Fatalf("SkipSeq(%d), want 7", seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SkipSeq not called")
	}
	if len(h.sink.got) != 0 || len(sink.got) != 0 {
		t.Fatal("readings pushed for a batch that stored nothing new")
	}
}
