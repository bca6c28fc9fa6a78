// Package alerts owns anomaly detection and the alert lifecycle: the
// detection rules per sensor metric (threshold, spike, stale) and their
// in-memory cache, the evaluation of every ingested reading, the offline
// check, storing alerts (through Store) and posting every new or changed
// alert to room "alerts" (through RoomPoster, the rooms package), the
// alert_ack and alert_resolve requests, silences (muting one sensor's or
// one rule's alerts for a while: they are still detected and stored,
// marked with the silence, but dashboards do not announce them), and the
// REST service behind GET /api/alerts, GET/PUT /api/sensors/{id}/rules
// and /api/silences. Rule changes and silences are broadcast to every
// connection (through Broadcaster, the hub). docs/alerts.md describes the
// rules, the defaults, silences and the lifecycle.
//
// # Goroutines
//
// Detector.PublishReadings runs on the ingest goroutine after each commit
// (it is an ingest.ReadingSink), or, with a share group, on the
// backplane's goroutine for every committed batch of every instance, in
// seq order; either way it must not slow them down. It only
// evaluates, in memory, under Detector.mu: per reading a map lookup, a few
// comparisons and an EWMA update, no I/O (BenchmarkPublishReadings: well
// under a microsecond per reading). What it decides (open, update, resolve
// an alert) is queued on the series as an op and the key is listed as
// dirty; one non-blocking send on a 1-slot channel wakes the worker.
//
// The worker is Run's goroutine. It takes the dirty list under the lock,
// then stores and posts the ops outside it, in order per alert key. It
// also runs the stale check every CheckInterval (under the lock, a scan of
// all series) and hands it updates that UpdateInterval held back. The
// stale check reports only watched series (regular ones, ones with a
// stored stale rule, every one in registered mode; see watchedLocked), so
// invented sensor ids cannot flood room alerts with offline alerts.
//
// # Back-pressure and bounds
//
// There is no queue to fill, so ingest never waits and nothing is dropped
// for lack of room: ops are kept per alert key and consecutive breaches of
// a live alert are folded into one update (count, latest value, worst
// severity), so the backlog is bounded by the number of keys, not by the
// reading rate. Updates of a live alert are posted at most once per
// UpdateInterval; opening, escalating and resolving go at once. While the
// store fails the worker retries with backoff and the ops wait; beyond
// maxOps per key the oldest resolve-and-reopen pair is folded away
// (counted as dropped, reason backlog_full). New series beyond MaxSeries
// and readings beyond MaxPending before the start-up load are not
// evaluated (dropped, reasons too_many_series and not_ready). A failed
// post is counted (post_failed), not retried: the alert is stored and
// clients reload live alerts over REST when they connect.
//
// # Consistency
//
// The database is the arbiter of "one live alert per sensor, metric and
// kind" (a partial unique index, UpsertAlert's ON CONFLICT); memory only
// decides when to write. The lifecycle handlers (alert_ack,
// alert_resolve) run on the requesting connection's reader goroutine and
// write to the store directly; a user's resolve tells detection (forget),
// so the next breach opens a new alert. Rule changes (SetRules) write the
// store, then the cache, under rulesMu, which the start-up load also
// holds. One instance should run detection per database: a second one
// would post every change twice and learn of rule changes only on restart.
// Several instances in a share group elect one detector (Config.Elector,
// leader.go): the others stand by, evaluating nothing; a new leader loads
// its state as at a restart, then replays the readings committed since the
// previous leader's checkpoint (Config.Handover), and reloads rules and
// silences every Config.Refresh. Every instance's detector is fed the whole
// committed stream in seq order by the backplane.
//
// # Restarts
//
// Run first loads the rules, the live alerts, the newest offline alert of
// each series and the statistics of each series' recent readings
// (SeriesStats). So live alerts are updated and auto-resolved rather than
// opened again, spike detection needs no new warm-up, and an outage
// already reported is not reported again. The statistics reflect every
// batch up to LastReadingSeq read just before them: a batch up to it that
// arrives live is not evaluated again (freshLocked). Readings arriving before the
// load is done wait in memory (bounded by MaxPending).
//
// # Who may call what
//
// New once; Run once, by the owner. PublishReadings from the ingest
// goroutine or the backplane's (any one goroutine at a time, as both
// guarantee). HandleAck
// and HandleResolve from hub reader goroutines; Alerts, Alert,
// AlertMessages, Rules, SetRules, Silences, CreateSilence and EndSilence
// from web handlers: all safe for concurrent use. The silences in force
// are cached under Detector.mu and read when an alert opens; Run's
// goroutine drops expired ones every CheckInterval (logging each), though
// whether one is in force always goes by the clock at evaluation.
package alerts
