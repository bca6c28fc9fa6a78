// Package web is Watchroom's HTTP face: the Fiber app with the REST API,
// the /ws upgrade (origin check, then the hub takes over), /metrics,
// health probes and the embedded dashboard.
//
// Handlers are stateless apart from the login rate limiter, which has its
// own lock; the App is safe for the concurrent use Fiber makes of it.
package web
