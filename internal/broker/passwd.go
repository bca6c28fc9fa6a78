package broker

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Secrets of devices are stored as Mosquitto 2.0 password-file hashes,
// "$7$<iterations>$<salt base64>$<PBKDF2-HMAC-SHA512 base64>", the format
// mosquitto_passwd writes, so the embedded broker verifies them and
// ExportMosquitto copies them into a password_file unchanged.
const (
	// hashIterations is Mosquitto 2.0's default. Stretching protects
	// guessable human passwords; device secrets are 256 random bits
	// (NewSecret), which no number of iterations makes easier or harder to
	// guess, while every connect pays for them. Hashes with other counts
	// (mosquitto_passwd -I) verify too.
	hashIterations = 101
	saltLen        = 12 // what mosquitto_passwd uses
	hashLen        = sha512.Size
	// maxIterations bounds the work a stored hash can demand of a connect.
	maxIterations = 1_000_000
)

// NewSecret returns a new random device secret: 32 bytes from crypto/rand,
// base64url without padding (43 characters, safe in URLs and shells).
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the Mosquitto "$7$" hash of secret with a new salt.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand since Go 1.24)
	sum, err := pbkdf2.Key(sha512.New, secret, salt, hashIterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("broker: hash secret: %w", err)
	}
	return "$7$" + strconv.Itoa(hashIterations) + "$" +
		base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum), nil
}

var errBadHash = errors.New("broker: not a Mosquitto $7$ hash")

// VerifySecret reports whether secret matches hash, comparing in constant
// time. A malformed hash matches nothing.
func VerifySecret(hash, secret string) bool {
	iter, salt, want, err := parseHash(hash)
	if err != nil {
		return false
	}
	got, err := pbkdf2.Key(sha512.New, secret, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

func parseHash(h string) (iter int, salt, sum []byte, err error) {
	parts := strings.Split(h, "$")
	// "", "7", iterations, salt, hash
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return 0, nil, nil, errBadHash
	}
	iter, err = strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > maxIterations {
		return 0, nil, nil, errBadHash
	}
	salt, err = base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) == 0 {
		return 0, nil, nil, errBadHash
	}
	sum, err = base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(sum) != hashLen {
		return 0, nil, nil, errBadHash
	}
	return iter, salt, sum, nil
}
