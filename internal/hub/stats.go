package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// stats feeds GET /api/stats. Counters are atomics bumped on the hot paths;
// the per-minute rate comes from a ring of per-second samples taken by Run.
type stats struct {
	start       time.Time
	active      atomic.Int64
	messages    atomic.Uint64 // server messages written to sockets
	failed      atomic.Uint64 // messages dropped with a slow or failed connection
	closedConns atomic.Uint64
	closedNanos atomic.Int64 // summed duration of closed connections

	mu      sync.Mutex
	samples [61]uint64 // messages total at each of the last 61 seconds
	next    int
	filled  int
}

func (s *stats) sample(time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[s.next] = s.messages.Load()
	s.next = (s.next + 1) % len(s.samples)
	if s.filled < len(s.samples) {
		s.filled++
	}
}

func (s *stats) perMinute() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filled < len(s.samples) {
		// Less than a minute since start, when the count was zero.
		return s.messages.Load()
	}
	oldest := (s.next - s.filled + len(s.samples)) % len(s.samples)
	return s.messages.Load() - s.samples[oldest]
}

// Stats is the JSON of GET /api/stats.
type Stats struct {
	ActiveConnections     int64   `json:"active_connections"`
	MessagesPerMinute     uint64  `json:"messages_per_minute"`
	TotalMessages         uint64  `json:"total_messages"`
	FailedDeliveries      uint64  `json:"failed_deliveries"`
	AvgConnectionSeconds  float64 `json:"average_connection_duration_seconds"`
	UptimeSeconds         float64 `json:"uptime_seconds"`
	ClosedConnectionCount uint64  `json:"closed_connections"`
}

// Stats returns a summary of the hub's activity since start.
func (h *Hub) Stats() Stats {
	s := &h.stats
	st := Stats{
		ActiveConnections:     s.active.Load(),
		MessagesPerMinute:     s.perMinute(),
		TotalMessages:         s.messages.Load(),
		FailedDeliveries:      s.failed.Load(),
		UptimeSeconds:         h.now().Sub(s.start).Seconds(),
		ClosedConnectionCount: s.closedConns.Load(),
	}
	if n := st.ClosedConnectionCount; n > 0 {
		st.AvgConnectionSeconds = time.Duration(s.closedNanos.Load() / int64(n)).Seconds()
	}
	return st
}
