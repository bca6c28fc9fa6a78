// Package frontend holds the dashboard: a Preact + TypeScript app built by
// Vite into dist/. The built dist/ is committed so that `go build` works on a
// fresh clone without Node; CI rebuilds it and fails when the result differs
// from what is committed (the build is deterministic). Dist is read-only and
// safe for concurrent use.
package frontend

import "embed"

// Dist is the built dashboard: dist/index.html and dist/assets/* (content
// hashed names, so the server may cache them for a long time). Use
// fs.Sub(Dist, "dist") to serve it from the root.
//
//go:embed all:dist
var Dist embed.FS
