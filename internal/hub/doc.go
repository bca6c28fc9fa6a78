// Package hub owns the WebSocket connections of /ws: first-message auth,
// keepalive, request routing, per-connection send queues, fan-out of
// readings, and deliveries that the client must acknowledge.
//
// # Goroutines and ownership
//
// Each connection has exactly two goroutines. The reader is the goroutine
// that called Serve: it blocks for the life of the connection (the Fiber
// websocket.Conn is pooled and released when the handler returns), reads
// frames and runs request handlers one at a time, so replies to one
// connection keep the order of its requests. The writer goroutine is the
// only one that ever writes to the socket (fasthttp/websocket panics on
// concurrent writers): messages, pings and the final close frame.
//
// Everyone else talks to a connection through its bounded send queue.
// Enqueueing never blocks and never happens under the hub's lock: broadcasts
// read a copy-on-write snapshot of the connection list. Each message is
// encoded once per broadcast, not once per connection.
//
// # Back-pressure
//
// Each connection's send queue is bounded (Config.SendQueue items; a
// broadcast batch of readings is one item). Past the high-water mark
// (Config.HighWater items or HighWaterMsgs messages) readings are no
// longer queued but conflated to the latest value per series (thin.go);
// once the writer has emptied the queue it sends a gap message naming what was left out and the latest
// values. Other messages are never thinned: if they overflow the queue,
// the connection is a slow consumer, closed with 4008 and counted
// (watchroom_ws_disconnects_total{reason="slow_consumer"}). Every frame
// write has a deadline (Config.WriteTimeout): a client that stops reading
// is closed when one is missed (reason "write_timeout"). When several
// messages are queued, the writer sends up to MaxBatch of them in one
// {"type":"batch"} frame.
//
// conn.mu decides where a message goes (queue, thinning map, or the held
// list of a resume); every enqueuer takes it briefly and never blocks
// under it. It is never taken while the hub's lock is held, nor the hub's
// lock under it.
//
// # Several instances
//
// With a Relay (SetRelay, relay.go), every Broadcast, SendToUsers and
// SendReliable hands its frame, encoded once, to the relay after pushing
// it to this instance's connections; Deliver pushes another instance's
// frame to this instance's connections of its recipients. Deliver never
// blocks and never relays. SendToLocalUsers is never relayed.
//
// # Resume
//
// A resume request (resume.go) holds the connection's live messages,
// reads what the client missed through the registered Replayers, then,
// under conn.mu, queues the replay minus what the held messages carry,
// the resumed reply, and the held messages. auth_ok is queued before the
// connection is registered, so it is always the first frame.
//
// # Ending a connection
//
// Anyone may end a connection with conn.fail (first call wins). The writer
// then sends the close frame, preceded by a last message if one was given
// (auth_error for an expired token), and cuts the reader's read deadline
// to closeGrace, so the reader ends even if the client never answers.
// Deadlines are the only lever: fasthttp ignores Close on a hijacked
// connection until the upgrade handler returns.
//
// Request handlers registered with Handle must be registered before the
// first Serve; they run on the reader goroutine of the requesting
// connection and may block it, but never another connection.
package hub
