package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds: exact below
// 64 µs, then 32 buckets per power of two (error under 3.2 %). It keeps
// the latency of every (reading, client) pair in constant memory, which a
// slice of samples could not at 30,000 readings/s to 100 clients for a
// minute. Not safe for concurrent use: each reader owns one, and they are
// merged at the end.
type hist struct {
	counts [64 * 32]uint64
	n      uint64
	max    int64 // µs
}

const subBits = 5 // 32 buckets per octave

func bucketOf(us int64) int {
	if us < 0 {
		us = 0
	}
	if us < 64 {
		return int(us)
	}
	exp := bits.Len64(uint64(us)) - 1 // ≥ 6
	mant := (us >> (exp - subBits)) & (1<<subBits - 1)
	return 64 + (exp-6)*(1<<subBits) + int(mant)
}

// lowerOf is the smallest value of bucket b.
func lowerOf(b int) int64 {
	if b < 64 {
		return int64(b)
	}
	b -= 64
	exp := b/(1<<subBits) + 6
	mant := int64(b % (1 << subBits))
	return (1<<subBits + mant) << (exp - subBits)
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	b := bucketOf(us)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.n++
	if us > h.max {
		h.max = us
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile in milliseconds (the bucket's lower
// bound), NaN when empty.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return float64(min(lowerOf(i), h.max)) / 1000
		}
	}
	return float64(h.max) / 1000
}

// Latency is a summary in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *hist) summary() Latency {
	if h.n == 0 {
		return Latency{}
	}
	return Latency{Count: h.n, P50: h.quantile(0.50), P99: h.quantile(0.99), P999: h.quantile(0.999), Max: float64(h.max) / 1000}
}
