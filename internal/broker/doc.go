// Package broker owns the embedded MQTT broker (mochi-mqtt) that Watchroom
// runs when no external broker is configured: single-machine installs and
// `watchroom demo`. It listens on one TCP address, lets in only the clients
// AuthConfig allows (devices from the devices table, Watchroom's service
// user, the gateway, anonymous readings in open mode; auth.go), refuses
// packets over MaxPacketSize, and is tuned so that QoS 1 messages are not
// dropped for persistent sessions:
//
//   - an MQTT 3.1.1 session with CleanSession=false is never expired, so its
//     subscriptions stay and QoS 1 messages queue while the client is away and
//     are sent again when it reconnects with the same client id;
//   - queued messages do not expire (mochi's default drops them after a day);
//   - the per-client write queue is as long as the offline queue, so a
//     subscriber that stalls for a moment is not silently skipped.
//
// Limits worth knowing: mochi keeps every unacknowledged QoS 1/2 message of
// a session as an in-flight packet holding a packet id, so at most 65535 can
// be queued per client whatever MaxQueued says. Messages queued for an
// offline session are resent on reconnect ordered by their second of
// arrival only, so their order within one second is not kept; consumers must
// not rely on it (readings carry their own timestamps). Each connection
// pre-allocates its write queue (8 bytes per slot, 800 KB with the default
// MaxQueued), which suits the few clients of a single-machine install.
// mochi acknowledges a PUBLISH to its sender before queuing it for the
// subscribers, so a message published at the very moment a persistent
// session is taken over by a reconnecting client can miss that session
// (seen about once in 40 tries in a test that reconnected right after the
// last PUBACK). Watchroom's own clients reconnect only after losing their
// connection, so this window is narrow; Mosquitto does not have it.
//
// Concurrency: New, Start, Close and Revoke may be called from any goroutine;
// New, Start and Close are serialised by the Broker; Start and Close each take effect once. Addr and
// URL are safe from any goroutine once Start has returned. mochi runs its own
// goroutines (one accept loop, two per client, one housekeeping loop); Close
// stops them.
package broker
