package model

import "errors"

// ErrNotFound is the one "no such row" error. The store wraps it (its
// ErrNotFound is this value) and every package that asks the store, or a
// fake of it, for something that may not exist checks it with errors.Is.
// It lives here, not in store, so that packages which reach the store only
// through their own small interfaces (rooms, alerts, devices, broker, web)
// can match it without importing the database package.
var ErrNotFound = errors.New("not found")

// ErrConflict is a well-formed change the current state does not allow
// (ending a silence that already ended or expired).
var ErrConflict = errors.New("conflict")
