package broker

import (
	"strings"
	"testing"
)

func TestSecretHash(t *testing.T) {
	// Written by Debian's mosquitto_passwd 2.0.11: `mosquitto_passwd -b -c f u s`.
	const fromMosquitto = "$7$101$btE8SiJWCLR0WTAI$niYoLfvuWWjS8DXxdaBp8o1pBlc1+b02IHN/c4IhO6uhKZK6KTEVK0jDJrAmHhydi+7hj8AUIzPbin/ryo0jbg=="
	secret := NewSecret()
	if len(secret) != 43 || strings.ContainsAny(secret, "+/=:$") {
		t.Fatalf("NewSecret() = %q: want 43 URL-safe characters", secret)
	}
	h, err := HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashSecret(secret)
	tests := []struct {
		name, hash, secret string
		want               bool
	}{
		{"mosquitto_passwd's hash, right secret", fromMosquitto, "s", true},
		{"mosquitto_passwd's hash, wrong secret", fromMosquitto, "t", false},
		{"own hash", h, secret, true},
		{"own hash, wrong secret", h, secret + "x", false},
		{"own hash, empty secret", h, "", false},
		{"second hash of the same secret", h2, secret, true},
		{"malformed", "$6$abc$def", secret, false},
		{"too many iterations", "$7$99999999$btE8SiJWCLR0WTAI$" + strings.Repeat("A", 88), "s", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySecret(tt.hash, tt.secret); got != tt.want {
				t.Errorf("VerifySecret = %v, want %v", got, tt.want)
			}
		})
	}
	if h == h2 {
		t.Error("two hashes of one secret are equal: the salt is not random")
	}
	if !strings.HasPrefix(h, "$7$101$") {
		t.Errorf("hash %q: want Mosquitto's $7$101$ prefix", h)
	}
}
