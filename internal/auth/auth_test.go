package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/watchroom/watchroom/internal/model"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "correct horse"); err != nil {
		t.Errorf("right password refused: %v", err)
	}
	if err := CheckPassword(h, "wrong horse"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password: err = %v", err)
	}
	for _, pw := range []string{"short", strings.Repeat("x", 73)} {
		if _, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%d bytes) accepted", len(pw))
		}
	}
	if err := CheckNoUser("x"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("CheckNoUser = %v", err)
	}
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tk, err := NewTokens(secret, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	good, exp, err := tk.Issue("alice", model.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("expires %v", exp)
	}
	other, _ := NewTokens([]byte(strings.Repeat("z", 32)), time.Hour, clock)
	forged, _, _ := other.Issue("alice", model.RoleAdmin)
	expiredTk, _ := NewTokens(secret, time.Hour, func() time.Time { return now.Add(-2 * time.Hour) })
	expired, _, _ := expiredTk.Issue("alice", model.RoleOperator)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "role": "admin", "iss": "watchroom", "exp": now.Add(time.Hour).Unix()})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "role": "admin", "iss": "watchroom", "exp": now.Add(time.Hour).Unix()})
	hs512Tok, _ := hs512.SignedString(secret)
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "operator", "admin", 1))) + "." + parts[2]

	t.Run("valid", func(t *testing.T) {
		c, err := tk.Verify(good)
		if err != nil {
			t.Fatal(err)
		}
		if c.User != "alice" || c.Role != model.RoleOperator || !c.ExpiresAt.Equal(exp) {
			t.Errorf("claims = %+v", c)
		}
	})
	for name, tok := range map[string]string{
		"other secret": forged, "expired": expired, "alg none": noneTok, "alg HS512": hs512Tok,
		"tampered payload": tampered, "garbage": "not.a.token", "empty": "",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tk.Verify(tok); !errors.Is(err, ErrBadToken) {
				t.Errorf("Verify = %v, want ErrBadToken", err)
			}
		})
	}
	if _, err := NewTokens([]byte("short"), time.Hour, clock); err == nil {
		t.Error("short secret accepted")
	}
}
