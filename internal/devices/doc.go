// Package devices owns the commands operators send to devices: validating
// and publishing them over MQTT, matching the devices' responses, timing
// out the unanswered ones, storing every command and its outcome (through
// CommandStore, the audit trail) and telling the issuing user the outcome
// as a reliable "command_response" message (through Notifier). Register
// adds its /ws request, "command" (operators and admins), to the hub.
//
// # Flow
//
// Send stores the command as pending, then publishes
// {"id","action","params","issued_by","ts"} at QoS 1 on
// <prefix>/<sensor>/commands. The device answers {"id","status","message"}
// on <prefix>/<sensor>/responses. Whichever comes first, a valid response
// or the timeout (Config.Timeout, default 10s), is stored by
// CommandStore.FinishCommand, which moves only pending commands: the store
// is the single arbiter of the race, and only the caller whose
// FinishCommand succeeded notifies the user. So each command yields exactly
// one command_response; a late response is rejected as not_pending. A
// publish that fails outright (not connected, write error) finishes the
// command as error "broker unavailable: ...". A publish not confirmed
// within 5s is not treated as failed, because paho keeps it and resends it
// after a reconnect: the device may still act on it, and the timeout
// decides.
//
// A response must arrive on the topic of the command's own sensor
// (wrong_device otherwise); command ids are 128 random bits, so a device
// cannot answer for a command it was not sent.
//
// # Restarts and other instances
//
// The MQTT session is persistent (CleanSession false, a stable client id),
// so responses published while the process is down are queued by the
// broker. Run first reloads every command still pending in the store and
// gives each its original deadline, but at least 2s (capped by the
// timeout) so queued responses can arrive first. Commands reloaded this way
// and responses to commands this process did not issue (looked up with
// CommandStore.Command, sensor checked) are delivered to the stored
// issued_by user with ref null: the request id is not stored.
//
// With several instances, any instance may receive any response (with
// Config.ShareGroup, one instance of the group gets each) and finishes the
// command through the store, which decides; the outcome reaches the
// issuing user wherever they are connected, as the hub relays reliable
// messages. Commands of an instance that died before their timeout fired
// are finished by the sweep: every Timeout, Run times out in one statement
// (CommandStore.TimeoutCommands) the commands still pending sweepSlack
// (5s) past their timeout, whoever issued them, and notifies their users
// (ref null unless the command is this process's). The store moves each
// command once, so a timeout fires once whichever instances sweep.
//
// Responses are acked manually (SetAutoAckDisabled), by the worker after
// it has handled them: stored and notified, or rejected. A response that
// was received but not yet handled when the process stops or crashes is
// delivered again by the broker on the next start. One that was stored
// but not yet notified when the process crashed is then rejected as
// not_pending and its user is not told (a window of one store call).
// Responses that cannot be used are acked anyway: redelivery would not
// make them usable.
//
// An entry leaves the in-memory pending map only once the store holds the
// command's final status. If FinishCommand fails, the entry keeps a timer
// and the timeout is retried every Timeout, so a command does not stay
// pending in the store because it was briefly unreachable.
//
// # Concurrency
//
// Send may be called from any number of goroutines (the hub's connection
// readers); it blocks for one store insert and at most about 5s waiting for
// the PUBACK. Connected may be called from any goroutine. Run must be
// called once; its goroutine is the single worker that handles responses
// and timeouts, one at a time, so their store calls and MQTT acks happen in
// arrival order and never race each other. The paho message callback only
// hands messages to the worker through a bounded queue and never blocks; a
// full queue drops (queue_full) and acks. Timers only hand command ids to
// the worker. The pending map is guarded by a mutex that is never held
// while calling the store, the notifier or paho.
//
// # Metrics
//
// watchroom_commands_total{outcome} (success, error, timeout,
// publish_failed), watchroom_command_latency_seconds (device responses
// only), watchroom_commands_pending,
// watchroom_command_responses_rejected_total{reason} and
// watchroom_command_notifications_dropped_total{reason}.
package devices
