package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestSettings(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	if _, err := s.Setting(ctx, "jwt_key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Setting of an absent key: err = %v, want ErrNotFound", err)
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"first call stores its value", "jwt_key", "first", "first"},
		{"second call gets the first value", "jwt_key", "second", "first"},
		{"other key is independent", "other", "x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SettingOrInit(ctx, tt.key, tt.value)
			if err != nil {
				t.Fatalf("SettingOrInit: %v", err)
			}
			if got != tt.want {
				t.Errorf("SettingOrInit(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
			}
			if v, err := s.Setting(ctx, tt.key); err != nil || v != tt.want {
				t.Errorf("Setting(%q) = %q, %v; want %q", tt.key, v, err, tt.want)
			}
		})
	}

	t.Run("instances starting together agree", func(t *testing.T) {
		const n = 8
		got := make(chan string, n)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				v, err := s.SettingOrInit(ctx, "race", fmt.Sprintf("value-%d", i))
				got <- v
				errs <- err
			}()
		}
		first := ""
		for i := range n {
			if err := <-errs; err != nil {
				t.Errorf("SettingOrInit: %v", err)
			}
			v := <-got
			if i == 0 {
				first = v
			} else if v != first {
				t.Errorf("instances disagree: %q and %q", first, v)
			}
		}
	})
}

func TestPutSetting(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for _, v := range []string{"1", "2"} {
		if err := s.PutSetting(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Setting(ctx, "k"); err != nil || got != v {
			t.Fatalf("Setting = %q, %v; want %q", got, err, v)
		}
	}
}
