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
// watchroom_readings_duplicate_total. Rejected messages are acknowledged in
// their place in the sequence: they can never become valid. So are
// retained messages (reason "retained"): the broker sends them on every
// subscription, as stale copies of what was delivered live.
//
// Readings without "ts" are stamped with the time the message was
// received, so they are the one thing a redelivery does not deduplicate:
// devices that can should send "ts".
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
// the connection, not even keepalive replies, so it must stay short. One
// pipeline goroutine (Run's) takes messages in order, decodes them, and
// commits a batch at BatchSize readings or FlushInterval after the batch's
// first message. On a store error it retries with exponential backoff and
// jitter and acknowledges nothing meanwhile.
//
// The queue cannot fill in normal operation: because we ack only after the
// commit, the broker's in-flight window (Mosquitto max_inflight_messages,
// which Watchroom documents as 1000) bounds the unacknowledged messages it
// sends, far below the default QueueSize of 10000. The exception is
// reconnects while the store is down: each new connection redelivers up to
// a window of messages while the old copies still sit in the queue. If the
// queue is full anyway the handler waits (counted in
// watchroom_ingest_queue_full_total) rather than dropping: a dropped
// message would come back only with the next session and would leave a
// hole in the in-order acks, while waiting only slows the broker down,
// which is the back-pressure we want. Memory stays bounded by QueueSize messages plus
// one batch. Mosquitto's default window of 20 makes ingest slow (at most 20
// messages per flush), so production brokers need the documented setting.
//
// # Shutdown
//
// When Run's context is done the pipeline stops taking messages, makes one
// last commit of the batch with a fresh context bounded to 5s, and acks
// what was committed. Before disconnecting, Run waits (up to 2s) until the
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
// ReadingSink.PublishReadings are only ever called from Run's goroutine,
// one call at a time; sinks must not block.
package ingest
