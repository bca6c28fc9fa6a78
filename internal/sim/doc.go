// Package sim owns the sensor simulator: it publishes readings of simulated
// sensors s-1..s-N over MQTT, acts as the device side of commands (answering
// on devices/{id}/responses) and serves as the load source for benchmarks.
// docs/simulator.md describes the topics, payloads, value ranges and device
// actions.
//
// Concurrency: New and Published may be called from any goroutine; Run is
// called once and blocks until its context ends. Inside Run one goroutine,
// the run loop, owns every sensor (values, schedule, silences) and all
// publishing; paho's message handler only checks an incoming command and
// hands it over through a bounded channel (it never blocks, a full queue
// drops the command and counts it); a second goroutine waits for publish
// confirmations in order and counts them. At most maxOutstanding publishes
// are unconfirmed at any time: when the broker falls behind, the run loop
// waits, and readings more than a second late are skipped and counted
// rather than sent in a burst.
//
// Values are deterministic for a given Seed and sensor, whatever the
// scheduling: each sensor draws from its own random source.
package sim
