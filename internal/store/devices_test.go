package store

import (
	"errors"
	"testing"
	"time"
)

func TestDevices(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	registered := func(id string) bool {
		t.Helper()
		ok, err := s.DeviceRegistered(ctx, id)
		if err != nil {
			t.Fatalf("DeviceRegistered(%q): %v", id, err)
		}
		return ok
	}

	if registered("d1") {
		t.Fatal("unknown device is registered")
	}
	if _, err := s.DeviceSecretHash(ctx, "d1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeviceSecretHash of unknown: err = %v, want ErrNotFound", err)
	}
	if err := s.AddDevice(ctx, "d1", "$7$hash1", "admin"); err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	if err := s.AddDevice(ctx, "d1", "$7$other", "admin"); !errors.Is(err, ErrDeviceExists) {
		t.Fatalf("AddDevice of an active id: err = %v, want ErrDeviceExists", err)
	}
	if h, err := s.DeviceSecretHash(ctx, "d1"); err != nil || h != "$7$hash1" {
		t.Fatalf("DeviceSecretHash = %q, %v; want the first hash kept", h, err)
	}
	if !registered("d1") {
		t.Fatal("added device is not registered")
	}
	if err := s.AddDevice(ctx, "bad/id", "$7$x", "admin"); err == nil {
		t.Fatal("AddDevice accepted an id with a slash (an MQTT level separator)")
	}

	none, since, err := s.DevicesRevokedSince(ctx, time.Time{})
	if err != nil || len(none) != 0 || !since.IsZero() {
		t.Fatalf("DevicesRevokedSince before any revoke = %v, %v, %v", none, since, err)
	}
	if err := s.RevokeDevice(ctx, "d1"); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	revoked, since, err := s.DevicesRevokedSince(ctx, time.Time{})
	if err != nil || len(revoked) != 1 || revoked[0] != "d1" || since.IsZero() {
		t.Fatalf("DevicesRevokedSince = %v, %v, %v; want d1", revoked, since, err)
	}
	if again, _, err := s.DevicesRevokedSince(ctx, since); err != nil || len(again) != 0 {
		t.Fatalf("DevicesRevokedSince(latest) = %v, %v; want none", again, err)
	}
	if err := s.RevokeDevice(ctx, "d1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second RevokeDevice: err = %v, want ErrNotFound", err)
	}
	if registered("d1") {
		t.Fatal("revoked device is still registered")
	}
	if _, err := s.DeviceSecretHash(ctx, "d1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeviceSecretHash of revoked: err = %v, want ErrNotFound", err)
	}
	ds, err := s.Devices(ctx)
	if err != nil || len(ds) != 1 || ds[0].Active() || ds[0].CreatedBy != "admin" {
		t.Fatalf("Devices = %+v, %v; want d1 revoked", ds, err)
	}

	// Adding a revoked id again gives it a new secret.
	if err := s.AddDevice(ctx, "d1", "$7$hash2", "ops"); err != nil {
		t.Fatalf("AddDevice after revoke: %v", err)
	}
	if h, err := s.DeviceSecretHash(ctx, "d1"); err != nil || h != "$7$hash2" {
		t.Fatalf("DeviceSecretHash after re-add = %q, %v", h, err)
	}
	if err := s.AddDevice(ctx, "a0", "$7$h", "admin"); err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	ds, err = s.Devices(ctx)
	if err != nil || len(ds) != 2 || ds[0].ID != "a0" || ds[1].ID != "d1" || !ds[1].Active() || ds[1].CreatedBy != "ops" {
		t.Fatalf("Devices = %+v, %v; want a0, d1 active", ds, err)
	}
}
