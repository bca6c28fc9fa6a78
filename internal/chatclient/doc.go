// Package chatclient is `watchroom chat`, the terminal client for chat
// rooms, direct messages and alerts: a bubbletea Model (login screen,
// rooms pane, messages, alerts pane, input line with slash commands,
// status line) and a Session that holds the /ws connection.
//
// Concurrency: the Model is bubbletea's, touched only by its Update and
// View on the program's goroutine. Session.Run owns the connection: it
// dials, authenticates (with "resume":true after the first connection),
// reads, acks what must be acked and tracks the resume cursors, all on its
// own goroutine, and hands every event to the Model through one channel
// in order. Send may be called from any goroutine: one mutex is the
// writer lock (fasthttp/websocket allows one concurrent writer). A second
// goroutine of Run refreshes the token a minute before it expires and
// sends it on the open connection.
//
// Reconnects back off from 0.5 s to 15 s. A connection that ends with 4001
// (token expired or revoked) ends the session: the Model goes back to the
// login screen with the server address and user name kept.
//
// With a token file (Options.TokenFile, `--token-file`) every token
// obtained is saved with SaveToken (mode 0600, replaced by rename) from
// the Model's goroutine, and a saved token of the same server and user is
// tried first with POST /api/refresh (Init): accepted, the password is
// skipped; refused (expired, revoked), the login screen asks for it.
// LoadToken refuses a file its owner's group or others may read or write.
package chatclient
