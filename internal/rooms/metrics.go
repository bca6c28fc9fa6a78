package rooms

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Reasons of watchroom_rooms_rejected_total: why a request was refused.
const (
	reasonBadData        = "bad_data"
	reasonInvalidRoom    = "invalid_room_name"
	reasonBadKind        = "bad_kind"
	reasonEmptyContent   = "empty_content"
	reasonContentTooLong = "content_too_long"
	reasonBadContent     = "bad_content"
	reasonUnknownRoom    = "unknown_room"
	reasonUnknownUser    = "unknown_user"
	reasonUnknownAlert   = "unknown_alert"
	reasonNotMember      = "not_member"
	reasonRoomTaken      = "room_taken"
	reasonFixedRoom      = "fixed_room"
	reasonCreateRate     = "create_rate_limited" // create_room faster than the per-user rate
	reasonTooManyRooms   = "too_many_rooms"      // create_room past the per-user cap
)

// Reasons of watchroom_rooms_dropped_total: notifications not sent.
const (
	dropTypingThrottled   = "typing_throttled"    // more than one user_typing per interval
	dropFanout            = "fanout_error"        // a stored message could not be fanned out
	dropRoomList          = "room_list_error"     // room_created/room_deleted not broadcast
	dropPresence          = "presence_error"      // user_joined/user_left not announced
	dropPresenceQueueFull = "presence_queue_full" // Run stopped or far behind
)

var rejectReasons = []string{reasonBadData, reasonInvalidRoom, reasonBadKind, reasonEmptyContent,
	reasonContentTooLong, reasonBadContent, reasonUnknownRoom, reasonUnknownUser, reasonUnknownAlert,
	reasonNotMember, reasonRoomTaken, reasonFixedRoom, reasonCreateRate, reasonTooManyRooms}

type metrics struct {
	// rejectLog bounds the log lines of refusals: the first of each
	// reason, then one a second. Filled in newMetrics, then only read.
	rejectLog      map[string]*rate.Sometimes
	rejected       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	chatMessages   prometheus.Counter
	chatBatch      prometheus.Histogram
	directMessages prometheus.Counter
	roomsCreated   prometheus.Counter
	roomsDeleted   prometheus.Counter
	presence       *prometheus.CounterVec
	online         prometheus.Gauge
	presencePeer   *prometheus.CounterVec
}

// newMetrics creates the collectors and registers them on reg with
// MustRegister (a conflict is a wiring bug); a nil reg is a private
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		rejectLog: map[string]*rate.Sometimes{},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_rooms_rejected_total", Help: "Room, chat and direct-message requests refused, by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_rooms_dropped_total", Help: "Room notifications not sent, by reason."}, []string{"reason"}),
		chatMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_chat_messages_total", Help: "Chat messages stored."}),
		chatBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "watchroom_chat_batch_messages", Help: "Chat messages of one room stored by one statement (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
		directMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_direct_messages_total", Help: "Direct messages stored."}),
		roomsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_rooms_created_total", Help: "Rooms created."}),
		roomsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_rooms_deleted_total", Help: "Rooms deleted."}),
		presence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_presence_changes_total", Help: "Presence changes: online, offline (after the grace period), reconnect_in_grace (nothing announced)."}, []string{"change"}),
		online: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "watchroom_presence_online_users", Help: "Users with at least one live connection to this instance or, in a cluster, to any instance."}),
		presencePeer: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_presence_peer_updates_total", Help: "Presence news from other instances, by kind: full, delta, gone, expired (silent past the TTL), out_of_sequence (ignored until the next full set)."}, []string{"kind"}),
	}
	for _, r := range rejectReasons {
		m.rejectLog[r] = &rate.Sometimes{First: 1, Interval: time.Second}
	}
	reg.MustRegister(m.rejected, m.dropped, m.chatMessages, m.chatBatch, m.directMessages, m.roomsCreated, m.roomsDeleted, m.presence, m.online, m.presencePeer)
	return m
}
