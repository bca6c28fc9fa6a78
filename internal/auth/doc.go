// Package auth hashes passwords (bcrypt) and issues and verifies login
// tokens (JWT signed with HMAC-SHA256; every other algorithm, "none"
// included, is refused). It does no I/O; a Tokens value is immutable after
// NewTokens and safe for concurrent use.
package auth
