package hub

import (
	"slices"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// Thinning: a connection whose send queue passes the high-water mark
// (Config.HighWater) gets its readings conflated to the latest value per
// sensor metric instead of queued one by one. When the writer has emptied
// the queue it sends one gap message naming what was left out, then the
// latest reading of each series, and readings are queued normally again.
// Only readings are thinned: chat, alerts, direct messages, command
// responses and replies always go through the queue, and only an overflow
// of the queue closes the connection (4008).

// thinning is the latest-per-series map of a connection; guarded by
// conn.mu.
type thinning struct {
	latest map[seriesKey]*thinSeries
	order  []seriesKey // first-seen order, for a stable gap message
	total  int         // readings left out
}

type seriesKey struct{ sensor, metric string }

type thinSeries struct {
	msg      []byte        // the encoded latest reading
	r        model.Reading // the latest reading (by ts)
	from, to time.Time     // bounds of the left-out readings' ts
	n        int           // readings left out
}

// conflateLocked folds readings rs (encoded as msgs) into the connection's
// thinning map; c.mu must be held.
func (c *conn) conflateLocked(msgs [][]byte, rs []model.Reading) {
	t := c.thin
	if t == nil {
		t = &thinning{latest: make(map[seriesKey]*thinSeries)}
		c.thin = t
		select {
		case c.thinKick <- struct{}{}:
		default:
		}
	}
	for i, r := range rs {
		k := seriesKey{r.SensorID, r.Metric}
		s := t.latest[k]
		if s == nil {
			t.latest[k] = &thinSeries{msg: msgs[i], r: r}
			t.order = append(t.order, k)
			continue
		}
		out := s.r // the one left out: the older of the two
		if r.TS.Before(s.r.TS) {
			out = r
		} else {
			s.msg, s.r = msgs[i], r
		}
		if s.n == 0 || out.TS.Before(s.from) {
			s.from = out.TS
		}
		if s.n == 0 || out.TS.After(s.to) {
			s.to = out.TS
		}
		s.n++
		t.total++
		c.h.m.thinned.Inc()
	}
}

// gapSeries is one series of a gap message.
type gapSeries struct {
	SensorID string `json:"sensor_id"`
	Metric   string `json:"metric"`
	From     string `json:"from"`
	To       string `json:"to"`
	Thinned  int    `json:"thinned"`
}

type gapData struct {
	Thinned int         `json:"thinned"`
	Series  []gapSeries `json:"series"`
}

// takeThinned ends thinning once the send queue is empty: it returns the
// gap message (when readings were left out) followed by the latest
// reading of each series, in ts order, for the writer to send. It returns
// nil while there is nothing to flush or the queue still holds messages.
// Called by the writer goroutine only.
func (c *conn) takeThinned() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.thin
	if items, _ := c.send.size(); t == nil || items > 0 {
		return nil
	}
	c.thin = nil
	latest := make([]*thinSeries, 0, len(t.order))
	var gap gapData
	gap.Thinned = t.total
	for _, k := range t.order {
		s := t.latest[k]
		latest = append(latest, s)
		if s.n > 0 {
			gap.Series = append(gap.Series, gapSeries{SensorID: k.sensor, Metric: k.metric,
				From: s.from.UTC().Format(model.ReadingTimeFormat), To: s.to.UTC().Format(model.ReadingTimeFormat), Thinned: s.n})
		}
	}
	slices.SortStableFunc(latest, func(a, b *thinSeries) int { return a.r.TS.Compare(b.r.TS) })
	out := make([][]byte, 0, len(latest)+1)
	if t.total > 0 {
		out = append(out, mustEncode("gap", nil, gap))
		c.h.m.gaps.Inc()
		c.h.m.messagesOut.WithLabelValues("gap").Inc()
	}
	for _, s := range latest {
		out = append(out, s.msg)
	}
	return out
}
