package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/watchroom/watchroom/internal/model"
)

// Users and the state that decides whether their tokens are still valid
// (migration 00006). Every change that revokes tokens writes a
// session_events row in the same transaction, so every instance learns of
// it (SessionEventsAfter).

// UpsertUser creates the user or replaces its role and password hash.
// passwordHash is stored as given (hashing is the auth package's job).
// Replacing the role or the hash of an existing user revokes their tokens.
func (s *Store) UpsertUser(ctx context.Context, name string, role model.Role, passwordHash string) error {
	if _, err := model.ParseRole(string(role)); err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// old reads the row as it was before the statement (all parts of
		// one statement share its snapshot).
		var bumped bool
		if err := tx.QueryRow(ctx, `WITH old AS (SELECT token_version FROM users WHERE name = $1)
INSERT INTO users AS u (name, role, password_hash) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, updated_at = now(),
	token_version = u.token_version + CASE WHEN (u.role, u.password_hash) IS DISTINCT FROM (excluded.role, excluded.password_hash) THEN 1 ELSE 0 END
RETURNING u.token_version > coalesce((SELECT token_version FROM old), u.token_version)`,
			name, string(role), passwordHash).Scan(&bumped); err != nil {
			return err
		}
		if bumped {
			return insertSessionEvent(ctx, tx, name, "")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	return nil
}

// User returns the named user if they exist and are not disabled, or an
// error matching ErrNotFound: a disabled user cannot log in.
func (s *Store) User(ctx context.Context, name string) (model.User, error) {
	var u model.User
	var role string
	err := s.pool.QueryRow(ctx, `SELECT name, role, password_hash, created_at FROM users WHERE name = $1 AND NOT disabled`, name).
		Scan(&u.Name, &role, &u.PasswordHash, &u.CreatedAt)
	if err != nil {
		return model.User{}, notFound("user", err)
	}
	u.Role = model.Role(role)
	return u, nil
}

// SetUserDisabled disables (or enables again) a user. Disabling revokes
// their tokens. An unknown user is an error matching ErrNotFound.
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool) error {
	return s.changeUser(ctx, "set user disabled", name,
		`UPDATE users SET disabled = $2, updated_at = now(),
	token_version = token_version + CASE WHEN $2 AND NOT disabled THEN 1 ELSE 0 END
WHERE name = $1`, disabled)
}

// SetPassword replaces a user's password hash and revokes their tokens.
func (s *Store) SetPassword(ctx context.Context, name, passwordHash string) error {
	return s.changeUser(ctx, "set password", name,
		`UPDATE users SET password_hash = $2, updated_at = now(), token_version = token_version + 1 WHERE name = $1`, passwordHash)
}

// DeleteUser removes a user; their tokens are revoked with the row.
// Messages they wrote stay. An unknown user is an error matching
// ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.changeUser(ctx, "delete user", name, `DELETE FROM users WHERE name = $1`)
}

// changeUser runs update on user name ($1) and records a session event,
// in one transaction.
func (s *Store) changeUser(ctx context.Context, op, name, update string, args ...any) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, update, append([]any{name}, args...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return insertSessionEvent(ctx, tx, name, "")
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

func insertSessionEvent(ctx context.Context, tx pgx.Tx, user, jti string) error {
	_, err := tx.Exec(ctx, `INSERT INTO session_events (user_name, jti) VALUES ($1, nullif($2, ''))`, user, jti)
	return err
}

// TokenState is what decides whether a token of user with id jti is still
// valid: the user exists and is not disabled, the token's version is the
// user's, and the token was not revoked.
func (s *Store) TokenState(ctx context.Context, user, jti string) (model.TokenState, error) {
	var st model.TokenState
	err := s.pool.QueryRow(ctx, `SELECT
	coalesce((SELECT NOT disabled FROM users WHERE name = $1), false),
	coalesce((SELECT token_version FROM users WHERE name = $1), 0),
	EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2)`, user, jti).Scan(&st.Active, &st.Version, &st.Revoked)
	if err != nil {
		return model.TokenState{}, fmt.Errorf("store: token state: %w", err)
	}
	return st, nil
}

// RevokeToken revokes one token (a logout) until it would have expired.
// Revoked tokens past their expiry are deleted on the way.
func (s *Store) RevokeToken(ctx context.Context, user, jti string, expires time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM revoked_tokens WHERE expires_at < now()`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO revoked_tokens (jti, user_name, expires_at) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, jti, user, expires); err != nil {
			return err
		}
		return insertSessionEvent(ctx, tx, user, jti)
	})
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	return nil
}

// SessionEventsAfter returns up to limit session events with ids above
// after, in id order. Ids commit in increasing order (migration 00006).
// Events older than a day are deleted on the way: an instance that was
// away longer re-checks every socket anyway (it has none).
func (s *Store) SessionEventsAfter(ctx context.Context, after int64, limit int) ([]model.SessionEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_name, coalesce(jti, '') FROM session_events
WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: session events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.SessionEvent, error) {
		var e model.SessionEvent
		err := row.Scan(&e.ID, &e.User, &e.JTI)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: session events: %w", err)
	}
	return out, nil
}

// LastSessionEvent returns the id of the newest session event, 0 when
// there is none: where a starting instance begins to follow them. It also
// deletes events older than a day.
func (s *Store) LastSessionEvent(ctx context.Context) (int64, error) {
	if _, err := s.pool.Exec(ctx, `DELETE FROM session_events WHERE at < now() - interval '1 day'`); err != nil {
		return 0, fmt.Errorf("store: last session event: %w", err)
	}
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM session_events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: last session event: %w", err)
	}
	return id, nil
}
