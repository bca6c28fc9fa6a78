package store

import (
	"context"
	"fmt"

	"github.com/watchroom/watchroom/internal/model"
)

// UpsertUser creates the user or replaces its role and password hash.
// passwordHash is stored as given (hashing is the auth package's job).
func (s *Store) UpsertUser(ctx context.Context, name string, role model.Role, passwordHash string) error {
	if _, err := model.ParseRole(string(role)); err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, updated_at = now()`,
		name, string(role), passwordHash)
	if err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	return nil
}

// User returns the named user, or an error matching ErrNotFound.
func (s *Store) User(ctx context.Context, name string) (model.User, error) {
	var u model.User
	var role string
	err := s.pool.QueryRow(ctx, `SELECT name, role, password_hash, created_at FROM users WHERE name = $1`, name).
		Scan(&u.Name, &role, &u.PasswordHash, &u.CreatedAt)
	if err != nil {
		return model.User{}, notFound("user", err)
	}
	u.Role = model.Role(role)
	return u, nil
}
