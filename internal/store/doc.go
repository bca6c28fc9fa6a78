// Package store owns Watchroom's PostgreSQL database: the connection pool,
// the goose migrations (applied by Migrate from the migrations package) and
// one file per table or concept: readings.go (the ingest hot path and
// history queries), sensors.go, users.go, commands.go (the device command
// audit trail), settings.go, deliveries.go (the outbox of messages a user
// must acknowledge), rooms.go and messages.go (chat rooms, membership, chat
// and direct messages), alerts.go and rules.go (anomaly alerts and the
// per-sensor rules that raise them), claims.go (names such as the
// instance id that one running process holds at a time: session advisory
// locks on a connection of their own); and the data lifecycle
// (docs/storage.md): partitions.go (the time partitions of readings and
// their rollups), rollups.go, retention.go, lifecycle.go (the maintenance
// task every instance runs) and export.go.
//
// Concurrency: a *Store is safe for concurrent use by any number of
// goroutines; every method takes a connection from the pool for the length
// of one call and holds no state between calls. Methods that write several
// rows do so in one transaction, so a caller that acknowledges work after a
// method returns nil (the ingest path acks MQTT messages only then) never
// acknowledges rows that were not committed. Concurrent InsertReadings calls
// lock rows in primary-key order, so two batch writers cannot deadlock each
// other; they also take turns on an advisory lock (the commit order of
// seq), which DropRaw holds too while it moves the raw horizon. Partition
// maintenance from several instances serialises on another advisory lock.
//
// Each pool connection creates a session temporary table (the staging
// table of InsertReadings) when it connects, so the database role needs the
// TEMP privilege (granted to PUBLIC by default).
//
// Errors are wrapped with the operation ("store: insert readings: ...") and
// returned, never logged here. Migrate logs each migration it applies
// through the logger it is given. Lookups of a single row that does not exist
// return an error matching ErrNotFound (errors.Is).
//
// All timestamps come back in UTC.
package store
