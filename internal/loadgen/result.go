package loadgen

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what `watchroom bench` prints and writes as JSON.
type Result struct {
	Started  time.Time     `json:"started"`
	Config   ConfigSummary `json:"config"`
	Ingest   IngestResult  `json:"ingest"`
	Live     LiveResult    `json:"live"`
	Chat     ChatResult    `json:"chat"`
	Idle     IdleResult    `json:"idle"`
	Server   ServerResult  `json:"server"`
	Ceilings CeilingResult `json:"ceilings"`
}

type ConfigSummary struct {
	Publishers  int     `json:"publishers"`
	Rate        int     `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	Clients     int     `json:"clients"`
	ChatSenders int     `json:"chat_senders"`
	ChatMembers int     `json:"chat_members"`
	ChatRate    int     `json:"chat_rate"`
	Idle        int     `json:"idle"`
	Users       int     `json:"users"`
}

type IngestResult struct {
	Published        int      `json:"published"`
	Acked            int      `json:"acked"`
	Stored           int      `json:"stored"`
	StoredFrom       string   `json:"stored_counted_from"`
	PublishSeconds   float64  `json:"publish_s"`
	OfferedPerSecond float64  `json:"offered_per_s"`
	StoredPerSecond  float64  `json:"stored_per_s"` // stored / (last increase of the counter − first publish)
	Lag              Latency  `json:"publish_to_first_receipt"`
	BatchAvg         float64  `json:"batch_avg"`
	CommitAvgMs      float64  `json:"commit_avg_ms"`
	Commits          float64  `json:"commits"`
	Errors           []string `json:"errors,omitempty"`
}

type LiveResult struct {
	Clients             int     `json:"clients"`
	Latency             Latency `json:"publish_to_receive"`
	DeliveriesPerSecond float64 `json:"deliveries_per_s"`
	Missed              int     `json:"missed_total"`
	MinMissed           int     `json:"missed_min_per_client"`
	MaxMissed           int     `json:"missed_max_per_client"`
	Duplicates          int     `json:"duplicates"`
	Thinned             int     `json:"thinned"`
	Closed              int     `json:"closed_early"`
}

type ChatResult struct {
	Senders             int            `json:"senders"`
	Members             int            `json:"members"`
	Sent                int            `json:"sent"`
	Stored              int            `json:"stored"` // chat_message_sent replies: stored before they are sent
	PerSecond           float64        `json:"messages_per_s"`
	DeliveriesPerSecond float64        `json:"deliveries_per_s"`
	Latency             Latency        `json:"send_to_receive"`
	Missed              int            `json:"missed_total"`
	Closed              int            `json:"closed_early"`
	Errors              map[string]int `json:"errors,omitempty"`
}

type IdleResult struct {
	Connections       int     `json:"connections"`
	ConnectSeconds    float64 `json:"connect_s"`
	RSSBeforeMB       float64 `json:"rss_before_mb"`
	RSSAfterMB        float64 `json:"rss_after_mb"`
	RSSPerConnKB      float64 `json:"rss_per_conn_kb"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
}

type ServerResult struct {
	CPUSeconds         float64 `json:"cpu_s"`
	PeakRSSMB          float64 `json:"peak_rss_mb"`
	GoroutinesBefore   float64 `json:"goroutines_before"`
	GoroutinesAfter    float64 `json:"goroutines_after"`
	SlowConsumerCloses float64 `json:"slow_consumer_closes"`
}

type CeilingResult struct {
	BrokerReadings  int     `json:"broker_readings"`
	BrokerPerSecond float64 `json:"broker_per_s"`
	CopyRows        int     `json:"copy_rows"`
	CopyPerSecond   float64 `json:"copy_per_s"`
	// Stored readings/s as a share of each ceiling.
	OfBroker   float64 `json:"stored_of_broker"`
	OfDatabase float64 `json:"stored_of_database"`
}

// Ratios fills the shares of the ceilings.
func (r *Result) Ratios() {
	if r.Ceilings.BrokerPerSecond > 0 {
		r.Ceilings.OfBroker = r.Ingest.StoredPerSecond / r.Ceilings.BrokerPerSecond
	}
	if r.Ceilings.CopyPerSecond > 0 {
		r.Ceilings.OfDatabase = r.Ingest.StoredPerSecond / r.Ceilings.CopyPerSecond
	}
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func lat(l Latency) string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s ms  (n=%d)", ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max), l.Count)
}

// WriteTable prints the figures as a two-column table.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	c := r.Config
	row("profile", "P=%d R=%d/s D=%gs C=%d chat K=%d M=%d %d/s idle N=%d users=%d", c.Publishers, c.Rate, c.DurationS, c.Clients,
		c.ChatSenders, c.ChatMembers, c.ChatRate, c.Idle, c.Users)
	if r.Ingest.Published > 0 {
		in := r.Ingest
		row("ingest", "published %d  acked %d  stored %d (%s)", in.Published, in.Acked, in.Stored, in.StoredFrom)
		row("ingest rate", "offered %.0f/s  stored %.0f/s  batches avg %.1f  commit avg %.2f ms", in.OfferedPerSecond, in.StoredPerSecond, in.BatchAvg, in.CommitAvgMs)
		row("publish→first receipt", "%s", lat(in.Lag))
		lv := r.Live
		row("live publish→receive", "%s", lat(lv.Latency))
		row("live delivery", "%d clients  %.0f deliveries/s  missed %d (per client %d..%d)  dup %d  thinned %d  closed %d",
			lv.Clients, lv.DeliveriesPerSecond, lv.Missed, max(lv.MinMissed, 0), lv.MaxMissed, lv.Duplicates, lv.Thinned, lv.Closed)
		for _, e := range in.Errors {
			row("ingest error", "%s", e)
		}
	}
	if r.Chat.Sent > 0 {
		ch := r.Chat
		row("chat", "%d senders  %d members  sent %d  stored %d  %.0f msg/s  %.0f deliveries/s  missed %d  closed %d",
			ch.Senders, ch.Members, ch.Sent, ch.Stored, ch.PerSecond, ch.DeliveriesPerSecond, ch.Missed, ch.Closed)
		row("chat send→receive", "%s", lat(ch.Latency))
		if len(ch.Errors) > 0 {
			var codes []string
			for k, v := range ch.Errors {
				codes = append(codes, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(codes)
			row("chat errors", "%s", strings.Join(codes, " "))
		}
	}
	if r.Idle.Connections > 0 {
		id := r.Idle
		row("idle", "%d connections  RSS %.1f → %.1f MB  %.1f KB/conn  %.2f goroutines/conn", id.Connections, id.RSSBeforeMB, id.RSSAfterMB, id.RSSPerConnKB, id.GoroutinesPerConn)
	}
	s := r.Server
	if s.PeakRSSMB > 0 {
		row("server", "CPU %.1f s  peak RSS %.1f MB  goroutines %.0f → %.0f  slow-consumer closes %.0f", s.CPUSeconds, s.PeakRSSMB, s.GoroutinesBefore, s.GoroutinesAfter, s.SlowConsumerCloses)
	}
	ce := r.Ceilings
	if ce.BrokerReadings > 0 {
		row("ceiling: broker alone", "%.0f/s (%d readings, bare QoS 1 subscriber)  stored/broker %.0f%%", ce.BrokerPerSecond, ce.BrokerReadings, 100*ce.OfBroker)
	}
	if ce.CopyRows > 0 {
		row("ceiling: database alone", "%.0f rows/s (CopyFrom, %d rows)  stored/database %.0f%%", ce.CopyPerSecond, ce.CopyRows, 100*ce.OfDatabase)
	}
	tw.Flush()
}
