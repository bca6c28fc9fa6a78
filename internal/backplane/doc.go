// Package backplane carries committed batches of readings between the
// instances that share a broker and a database, and hands every committed
// batch, this instance's and the others', to the local sinks (the hub and
// alert detection) in seq order. It runs only with a share group (each
// reading is ingested by one instance, see ingest's "Shared
// subscriptions"); a single instance has no backplane at all, and ingest
// feeds its sinks directly.
//
// # Wire
//
// Topic watchroom/v1/readings, QoS 1, not retained, one JSON object per
// message:
//
//	{"v":1,"origin":"web-1","seq":7215,"part":0,"parts":1,
//	 "readings":[{"sensor_id":"s-1","metric":"t","value":23.5,"unit":"°C","ts":"2026-12-01T09:00:00.123456Z"}]}
//
// origin is the publishing instance's id (WATCHROOM_INSTANCE_ID), seq the
// batch's commit order (store.InsertReadings), readings the readings the
// batch stored, in the /ws encoding. A batch of more than 500 readings is
// split into parts (part of parts), so that every message stays under the
// shipped broker's 256 KiB message_size_limit; a batch that stored nothing
// new is one part without readings, so that nobody waits for its seq.
// "v" changes with any incompatible change; a message of another version
// is dropped and shows as a gap.
//
// Every instance subscribes to the topic without sharing, with a clean
// session and its own client id (the MQTT client id plus "-backplane"),
// and ignores its own messages: its own batches reach its sinks straight
// from ingest, through the same ordering.
//
// # Order and gaps
//
// Batches commit in seq order (an advisory lock held until commit), but
// reach an instance by different paths, so out of order. The orderer
// (order.go) delivers seq after seq. A batch whose predecessor is missing
// waits; if the predecessor is still missing Config.Hold (250 ms) after
// delivery began waiting for it, the missing seqs up to the highest one
// received are read from PostgreSQL (ReadingsInSeqRange) and delivered in
// their place. By then each of them is decided: a later batch has
// committed, so the earlier ones have committed or rolled back. A seq
// PostgreSQL has no readings of (rolled back, or a batch whose message
// was lost and that stored nothing new) is skipped. A batch arriving
// after its seq went by is dropped (stale). So a client sees the batches
// in seq order without holes, and its resume cursor (the highest seq it
// saw) never skips one. The batches released together (after a wait) go
// to the sinks in one call, their readings in seq order: one item in each
// connection's send queue, not one per batch, so that the burst a wait
// releases does not pass the hub's high-water mark and thin the readings
// of clients that keep up.
//
// An instance notices a gap when a later batch arrives: messages lost
// while the backplane client was disconnected (clean session), a batch
// dropped for a full queue, a batch whose instance died between commit and
// publish, a failed publish. The tail of a stream that then goes quiet is
// delivered with the next batch; clients can always resume from
// PostgreSQL. If PostgreSQL cannot be read, the missing seqs are skipped
// (counted in watchroom_backplane_fill_errors_total): clients get them by
// resume or over REST. Counted: watchroom_backplane_gaps_total (missing
// past the hold), _gaps_filled_total (found with readings),
// _gap_readings_total.
//
// The start: Init reads the last seq handed out, under the lock batches
// commit under (store.LastReadingSeq), so every batch up to it has
// committed or rolled back and every later one commits after: those are
// delivered. Init runs before ingest can commit, so this instance's own
// batches are all after it.
//
// # Goroutines and back-pressure
//
// PublishReadings and SkipSeq run on ingest's committer; receive on
// paho's router goroutine. Neither blocks: each puts the batch on a
// bounded channel (Config.QueueSize) or drops it, counted in
// watchroom_backplane_dropped_total and logged at most once a second;
// a dropped batch is a gap that the instances missing it fill from
// PostgreSQL. Run's goroutine owns the orderer: it takes batches, fills
// gaps when the hold timer fires, and calls the sinks (which must not
// block), one batch at a time. A second goroutine of Run's publishes this
// instance's batches in commit order, waiting for each PUBACK (5 s).
//
// # Events
//
// Besides the readings, the same client carries small events between
// instances (events.go): topic watchroom/v1/events/<kind>, one local
// handler per kind (Handle), published in call order (Publish, never
// blocking), a last will (SetWill), published by us too at a clean stop,
// and hooks run at each connection (OnConnect). cmd/watchroom uses them
// for the hub's relayed frames, presence and room changes. While the
// connection is down (or not yet subscribed) the events publisher
// goroutine holds events in order (up to heldMax, the oldest dropped and
// counted) and publishes them first when it is back, before the state
// the OnConnect hooks publish. Each event carries its origin's number N;
// a receiver counts a jump as missed (watchroom_backplane_events_missed_total),
// so what the broker could not deliver (a receiver that was itself away)
// is never silent.
//
// # Who may call what
//
// New, Init and Run once each, by the owner, in that order; Run blocks
// until ctx is done, then delivers what it holds in seq order without
// waiting for gaps, publishes what is queued (up to 2 s) and disconnects.
// PublishReadings and SkipSeq from one goroutine at a time (ingest's);
// Connected from any goroutine.
package backplane
