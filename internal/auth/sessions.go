package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/watchroom/watchroom/internal/model"
)

// ErrRevoked is wrapped by Check when a token was valid but is no more: its
// user was deleted, disabled, demoted or given a new password, or the
// token was logged out.
var ErrRevoked = errors.New("auth: session revoked")

// SessionStore holds what decides whether a token is still valid (the
// database; see migration 00006).
type SessionStore interface {
	TokenState(ctx context.Context, user, jti string) (model.TokenState, error)
	RevokeToken(ctx context.Context, user, jti string, expires time.Time) error
}

// Sessions issues the tokens users log in with and checks, beyond the
// signature, that they were not revoked. A token carries its user's token
// version; the store bumps the version on every change that must end the
// user's sessions, and keeps the ids of tokens revoked one by one.
//
// Results are cached for CacheTTL per token, so a burst of REST calls costs
// one query; Forget drops a user's entries when a revocation is seen
// (Watch), so within one instance a revocation takes effect at once, and
// on the others within their poll interval. Safe for concurrent use.
type Sessions struct {
	tokens *Tokens
	st     SessionStore
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[sessionKey]cachedState
}

type sessionKey struct{ user, jti string }

type cachedState struct {
	st model.TokenState
	at time.Time
}

// maxCachedSessions bounds the cache; past it the cache starts afresh (it
// is only a cache: correctness never depends on an entry being there).
const maxCachedSessions = 100000

// CacheTTL is how long a checked token state is reused.
const CacheTTL = time.Second

// NewSessions returns Sessions issuing with tokens and checking against st.
// now is the clock of the cache.
func NewSessions(tokens *Tokens, st SessionStore, now func() time.Time) *Sessions {
	return &Sessions{tokens: tokens, st: st, ttl: CacheTTL, now: now, cache: map[sessionKey]cachedState{}}
}

// Issue returns a token for user with role at the user's current token
// version, and when it expires.
func (s *Sessions) Issue(ctx context.Context, user string, role model.Role) (string, time.Time, error) {
	st, err := s.st.TokenState(ctx, user, "")
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: issue: %w", err)
	}
	if !st.Active {
		return "", time.Time{}, ErrBadCredentials
	}
	return s.tokens.issue(user, role, st.Version)
}

// Verify checks the token's signature and claims, then that it was not
// revoked.
func (s *Sessions) Verify(ctx context.Context, token string) (Claims, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	if err := s.Check(ctx, c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Check reports whether verified claims are still valid: nil, an error
// wrapping ErrRevoked, ErrBadToken once expired, or a store error.
func (s *Sessions) Check(ctx context.Context, c Claims) error {
	if !s.now().Before(c.ExpiresAt) {
		return fmt.Errorf("%w: expired", ErrBadToken)
	}
	k := sessionKey{c.User, c.ID}
	s.mu.Lock()
	e, ok := s.cache[k]
	s.mu.Unlock()
	if !ok || s.now().Sub(e.at) >= s.ttl {
		st, err := s.st.TokenState(ctx, c.User, c.ID)
		if err != nil {
			return fmt.Errorf("auth: check session: %w", err)
		}
		e = cachedState{st: st, at: s.now()}
		s.mu.Lock()
		if len(s.cache) >= maxCachedSessions {
			clear(s.cache)
		}
		s.cache[k] = e
		s.mu.Unlock()
	}
	switch {
	case !e.st.Active:
		return fmt.Errorf("%w: user %s no longer exists or is disabled", ErrRevoked, c.User)
	case e.st.Version != c.Version:
		return fmt.Errorf("%w: the role or password of %s changed", ErrRevoked, c.User)
	case e.st.Revoked:
		return fmt.Errorf("%w: logged out", ErrRevoked)
	}
	return nil
}

// Revoke ends the one session of c (a logout) until its token expires.
func (s *Sessions) Revoke(ctx context.Context, c Claims) error {
	if err := s.st.RevokeToken(ctx, c.User, c.ID, c.ExpiresAt); err != nil {
		return fmt.Errorf("auth: revoke: %w", err)
	}
	s.Forget(c.User)
	return nil
}

// Forget drops the cached state of user's tokens, so the next Check asks
// the store.
func (s *Sessions) Forget(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if k.user == user {
			delete(s.cache, k)
		}
	}
}
