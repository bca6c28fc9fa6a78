// Package migrations holds the SQL schema of Watchroom as goose migration
// files, embedded into the binary. Files are applied in version order by
// store.Migrate. A migration that has landed is never edited: schema changes
// go into a new file with the next version number.
package migrations

import "embed"

// FS holds every migration file. It is read-only and safe for concurrent use.
//
//go:embed *.sql
var FS embed.FS
