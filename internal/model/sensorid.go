package model

import "fmt"

// MaxIDLen bounds sensor ids and metric names.
const MaxIDLen = 64

// ValidID reports whether s is a valid sensor id or metric name: 1 to 64
// characters of ASCII letters, digits, '-', '_' and '.'. The same rule keeps
// ids safe inside MQTT topics (no '/', '+', '#') and in URLs.
func ValidID(s string) error {
	if len(s) == 0 || len(s) > MaxIDLen {
		return fmt.Errorf("must be 1 to %d characters", MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("invalid character %q (allowed: letters, digits, '-', '_', '.')", c)
		}
	}
	return nil
}
