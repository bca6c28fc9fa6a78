// Package ingest owns the way in: the MQTT subscription to sensor topics,
// decoding of payloads into model.Reading (Decode), batching, the commit
// through a ReadingStore, and the acknowledgement of each message to the
// broker only after its readings are committed. Committed batches are then
// handed to ReadingSinks (the hub, alert detection).
//
// # Delivery guarantee
//
// At least once, end to end. The client keeps a persistent session
// (CleanSession false, a stable client id, QoS 1), so the broker holds
// every message it has not seen acknowledged and delivers it again to the
// next connection with the same id, also across our restarts. Acks are
// sent manually (AutoAckDisabled) after InsertReadings returns nil. A
// message can therefore arrive twice (after a reconnect, a restart or a
// failed final flush); the store's unique key on (sensor, metric, ts) turns
// the second copy into a no-op, counted in
// watchroom_readings_duplicate_total when the value is the same. A reading
// whose key is stored with another value is a conflict, not a duplicate:
// the store never overwrites, the first committed value stays (within one
// batch, the first received), and the reading is counted in
// watchroom_readings_conflict_total and logged at most once a second with
// both values. Rejected messages are acknowledged in
// their place in the sequence: they can never become valid. So are
// retained messages (reason "retained"): the broker sends them on every
// subscription, as stale copies of what was delivered live.
//
// # Shared subscriptions
//
// With Config.ShareGroup set, the topics are subscribed as
// $share/{group}/{topic}: the broker gives each message to one member of
// the group, so several instances ingest each reading once. Nothing else
// changes (QoS 1, persistent session, ack after commit). Mosquitto holds a
// dead member's unacknowledged messages in its session and keeps assigning
// it its turn of new ones until it returns
// (TestMosquittoSharedSubscriptionMemberDies), so at shutdown Run leaves
// the group first (leaveGroup: UNSUBSCRIBE, then drain what was already
// sent) and the other members take everything from then on. Mosquitto does
// not persist shared subscriptions: after a broker restart a group has no
// members until they subscribe again, and what is published meanwhile is
// discarded (docs/mqtt.md).
//
// # Elected ingest
//
// With Config.Lead set, the instances share one persistent session (one
// ClientID, a plain subscription) and only the holder of a term connects:
// Run's goroutine waits in Lead, runs a session until the term is lost or
// ctx ends, then stops it as at a shutdown (commit, ack, fence, disconnect)
// and waits again; Standby reports the waiting. What the old holder had not
// acknowledged is the broker's to redeliver to the next one, so a session
// starts with an empty batch and leaves its queue empty. The broker
// persists a plain subscription, so a broker restart loses nothing either.
//
// # Admission
//
// After decoding, Admission decides whether a message's sensor may create
// readings (see admit.go and docs/mqtt.md): in registered mode only
// registered devices (SensorRegistry, answers cached for RegistryTTL), and
// in every mode series never seen before only at a bounded rate (the known
// set is seeded from the store by Run's goroutine before the first message
// and grows with every series admitted). A refused message is rejected
// like a malformed one: acked in its place, counted, logged at a bounded
// rate.
//
// # Readings without "ts"
//
// They are stamped with the time the message was received (Ingest.now,
// injected in tests). Two distinct messages never become one row:
//
//   - on an instance, the pipeline's stamper makes receipt stamps strictly
//     increasing per series (sensor, metric): max(receipt time, the highest
//     receipt time seen, the series' last stamp + 1µs), so a burst or a
//     backlog arriving within one microsecond is spread over several;
//   - across restarts and instances (whose stampers start afresh, with
//     clocks that may be behind), the readings are marked Receipt and the
//     store moves one whose key is taken to the first free microsecond of
//     its series (within store.RestampSpan), in the same transaction,
//     counted in watchroom_readings_restamped_total. A receipt stamp is
//     ours, so a taken key never means a redelivery.
//
// Rule for several instances sharing the database: stamps stay unique per
// series whatever the clocks do (the store arbitrates under its unique
// key); their order across instances, or across a restart with the clock
// stepped back, is only as good as the clocks (keep them NTP-synced).
//
// The price: a redelivered message without "ts" is a new receipt and is
// stored again (after a reconnect, a restart whose last acks were lost, or
// a commit that timed out after the database had committed it). Devices
// that want exactly-once send "ts".
//
// # Ack order and reconnects
//
// MQTT 3.1.1 expects PUBACKs in the order the PUBLISHes arrived. The
// pipeline acks every message of a batch, rejected ones included, in
// arrival order, and batches commit in order. paho binds each message's Ack
// to the connection it arrived on (router.go matchAndDispatch / net.go
// ackFunc): once that connection's router has stopped, Ack is dropped, and
// the old router always stops before a new connection starts. So a message
// received on an older connection is never acked on a newer one (its
// packet id could name a different message there); the broker redelivers
// it and the store deduplicates it.
//
// # Goroutines and back-pressure
//
// paho calls the message handler on its router goroutine, one message at a
// time (OrderMatters). The handler only puts the message on a bounded
// channel (Config.QueueSize). While it is blocked paho reads nothing from
// the connection, not even keepalive replies, so it must stay short. The
// pipeline has two stages that overlap. The receiver (Run's goroutine)
// takes messages in order, decodes, admits and stamps them into a batch;
// the committer (one goroutine of the pipeline) commits a batch, acks its
// messages and hands the readings to the sinks, one batch at a time, in the
// order they were filled. Group commit: the receiver hands its batch over
// as soon as the committer is idle, so a message arriving at a quiet time
// is committed alone at once, and under load a batch holds what arrived
// during the previous commit, up to BatchSize readings (a full batch waits
// and the receiver takes nothing more). FlushInterval, 0 by default, makes
// a batch also wait that long after its first message, for fewer and
// larger commits. On a store error the committer retries with exponential
// backoff and jitter and acknowledges nothing meanwhile; the receiver fills
// at most one batch behind it. Each attempt has its own
// deadline (Config.CommitTimeout): a database that stops answering without
// closing the connection is noticed, logged and counted
// (watchroom_ingest_flush_errors_total{reason="timeout"}) and retried.
//
// The queue can fill, and the broker's in-flight window does not prevent
// it. Measured with Mosquitto 2.0.11 and max_inflight_messages 1000
// (TestMosquittoInflightWindowWithAcks): a subscriber that never acks gets
// exactly 1000 messages, but one that acks in batches, as the pipeline
// does, had 4,600 to 7,800 unacknowledged messages out at once while
// draining a backlog or a live burst, so the queue (QueueSize, 10000 by
// default) fills in a long drain behind a slow store. Reconnects while the
// store is down add to it: each new connection redelivers while the old
// copies still sit in the queue. When the queue is full the handler waits
// (counted in watchroom_ingest_queue_full_total) rather than dropping: a
// dropped message would come back only with the next session and would
// leave a hole in the in-order acks, while waiting stops paho reading the
// socket, so TCP flow control holds the broker back, which is the
// back-pressure we want (TestIngestQueueFullLosesNothing). Memory stays
// bounded by QueueSize messages plus two batches. A wait longer than the
// keepalive (30s) plus the ping timeout (10s) can drop the connection; the
// broker then redelivers what was not acked. Mosquitto's default window of
// 20 makes ingest slow (at most 20 messages per flush), so production
// brokers need the documented setting.
//
// # Shutdown
//
// When Run's context is done the pipeline stops taking messages, waits for
// the committer to end, and makes one last commit of the committer's
// unfinished batch and then of the receiver's, in that order, with a fresh
// context bounded to 5s (each attempt also to the commit timeout), and
// acks what was committed. Before disconnecting, Run waits (up to 2s) until the
// broker has processed those acks: it sends an UNSUBSCRIBE of an unused
// filter and waits for the UNSUBACK, which the broker answers after every
// packet sent before it. Without this fence, Mosquitto 2.0, which reads
// one packet per connection per loop iteration, drops the unread acks when
// the next instance connects with the same client id right away, and
// redelivers those messages. Then Run disconnects (250ms quiesce). Anything
// not committed is not acknowledged and is redelivered to the next session.
//
// # Concurrency rules
//
// Decode is a pure function, safe from any goroutine. New and Run are
// called once each, by the owner; Run blocks until shutdown. Connected is
// safe from any goroutine. ReadingStore.InsertReadings and
// ReadingSink.PublishReadings are only ever called from the committer (and
// from Run's goroutine at shutdown, after the committer ended), one call at
// a time; sinks must not block. The stamper and the admitter belong to the
// receiver.
package ingest
