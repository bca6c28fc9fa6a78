// Package config parses Watchroom's configuration, once, from command-line
// flags and WATCHROOM_* environment variables into a Config value. Flags win
// over the environment, the environment over defaults. The list of settings
// (Vars) is the single source of the README's configuration table and of the
// docker-compose check.
//
// Parsing has no side effects beyond reading its arguments: the caller
// passes the environment in, so tests never touch the process environment.
package config
