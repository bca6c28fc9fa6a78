package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/watchroom/watchroom/internal/model"
)

// ErrBadCredentials is returned for any wrong user name or password, without
// saying which was wrong.
var ErrBadCredentials = errors.New("auth: wrong user name or password")

// ErrBadToken is wrapped by every token verification failure.
var ErrBadToken = errors.New("auth: invalid token")

// Password length limits. bcrypt reads at most 72 bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

const bcryptCost = 11

// HashPassword returns a bcrypt hash of pw.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("auth: password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword compares pw with a hash made by HashPassword.
func CheckPassword(hash, pw string) error {
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
		return ErrBadCredentials
	}
	return nil
}

// dummyHash lets a login for an unknown user take as long as one for a known
// user, so response times do not reveal which names exist.
// It is immutable once computed.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("watchroom-dummy-password"), bcryptCost)
	return h
})

// CheckNoUser spends the time of a password check and returns
// ErrBadCredentials.
func CheckNoUser(pw string) error {
	_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
	return ErrBadCredentials
}

// Claims is what a verified token says.
type Claims struct {
	User      string
	Role      model.Role
	ExpiresAt time.Time
	ID        string // the token's own id (jti): a logout revokes this one token
	Version   int64  // the user's token version when it was issued (see Sessions)
}

type claims struct {
	Role    string `json:"role"`
	Version int64  `json:"ver,omitempty"`
	jwt.RegisteredClaims
}

const issuer = "watchroom"

// Tokens issues and verifies login tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a Tokens signing with secret. now is the clock (time.Now
// in production).
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < 32 {
		return nil, errors.New("auth: the token secret must be at least 32 bytes")
	}
	return &Tokens{secret: secret, ttl: ttl, now: now}, nil
}

// Issue returns a signed token for user with role, and when it expires.
// Its version is 0: Sessions, which knows the user's version, issues the
// tokens users log in with.
func (t *Tokens) Issue(user string, role model.Role) (string, time.Time, error) {
	return t.issue(user, role, 0)
}

func (t *Tokens) issue(user string, role model.Role, version int64) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl).Truncate(time.Second)
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: token id: %w", err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		Role:    string(role),
		Version: version,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   user,
			ID:        hex.EncodeToString(id[:]),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	})
	s, err := tok.SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks the token's signature (HS256 only), expiry and issuer.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	role, err := model.ParseRole(c.Role)
	if err != nil || c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: missing user or role", ErrBadToken)
	}
	return Claims{User: c.Subject, Role: role, ExpiresAt: c.ExpiresAt.Time, ID: c.ID, Version: c.Version}, nil
}
