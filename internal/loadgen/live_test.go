package loadgen

import (
	"sync/atomic"
	"testing"
	"time"
)

// The hub ends a period of thinning with a batch frame: the gap message,
// then the latest readings. The reader counts the gap's thinned readings
// and records the readings of the same frame.
func TestReaderCountsAGapInsideABatchFrame(t *testing.T) {
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	x := &liveIndex{baseUs: base.UnixMicro(), total: 4, sentAt: make([]atomic.Int64, 4), first: make([]atomic.Int64, 4)}
	for i := range x.sentAt {
		x.sentAt[i].Store(1)
	}
	c := &reader{seen: make([]uint64, 1)}
	frame := []byte(`{"type":"batch","data":[` +
		`{"type":"gap","data":{"thinned":5,"series":[{"sensor_id":"s","metric":"v","from":"x","to":"y","thinned":5}]}},` +
		`{"type":"reading","data":{"sensor_id":"s","metric":"v","value":1,"ts":"2026-12-01T00:00:00.000003Z"}}]}`)
	items, ok, err := decodeBatch(frame, []batchItem(nil))
	if !ok || err != nil {
		t.Fatalf("decodeBatch: batch %v, err %v", ok, err)
	}
	for _, m := range items {
		c.handle(x, m, time.Now())
	}
	if c.thinned != 5 || c.distinct.Load() != 1 || c.seen[0] != 1<<3 || c.foreign != 0 {
		t.Errorf("thinned %d, distinct %d, seen %b, foreign %d; want 5, 1, reading 3, 0", c.thinned, c.distinct.Load(), c.seen[0], c.foreign)
	}
	if _, ok, _ := decodeBatch([]byte(`{"type":"reading","data":{}}`), []batchItem(nil)); ok {
		t.Error("a single reading taken for a batch")
	}
}
