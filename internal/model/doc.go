// Package model holds the plain data types that several packages share:
// readings, sensors, users and roles, commands. It does no I/O and has no
// state, so it is safe for concurrent use.
package model
