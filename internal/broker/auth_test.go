package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/watchroom/watchroom/internal/model"
)

var errNoDevice = fmt.Errorf("fake store: device: %w", model.ErrNotFound)

// fakeDevices is an in-memory DeviceStore: id → secret hash.
type fakeDevices map[string]string

func (f fakeDevices) DeviceSecretHash(_ context.Context, id string) (string, error) {
	if h, ok := f[id]; ok {
		return h, nil
	}
	return "", errNoDevice
}

func (f fakeDevices) DevicesRevokedSince(_ context.Context, since time.Time) ([]string, time.Time, error) {
	return nil, since, nil
}

func authBroker(t *testing.T, anonymous bool) (*Broker, string) {
	t.Helper()
	secret := NewSecret()
	h, _ := HashSecret(secret)
	b := startBroker(t, Config{Auth: &AuthConfig{
		Devices:          fakeDevices{"d1": h},
		ServicePassword:  "service-secret",
		AllowAnonymous:   anonymous,
		ServiceClientIDs: []string{"watchroom-1"},
	}})
	return b, secret
}

func tryConnect(url, clientID, user, pass string, will string) error {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if will != "" {
		opts.SetWill(will, `{"id":"x","status":"success"}`, 1, false)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("timeout")
	}
	if tok.Error() == nil {
		c.Disconnect(0)
	}
	return tok.Error()
}

func TestAuthConnect(t *testing.T) {
	open, secret := authBroker(t, true)
	registered, secret2 := authBroker(t, false)
	tests := []struct {
		name                       string
		b                          *Broker
		clientID, user, pass, will string
		ok                         bool
	}{
		{"anonymous in open mode", open, "a1", "", "", "", true},
		{"anonymous in registered mode", registered, "a2", "", "", "", false},
		{"device with its secret", registered, "d1", "d1", secret2, "", true},
		{"device with a wrong secret", registered, "d1", "d1", secret, "", false},
		{"unknown device", open, "d9", "d9", secret, "", false},
		{"service user", open, "watchroom-1", ServiceUser, "service-secret", "", true},
		{"service user, wrong password", open, "s2", ServiceUser, "service-secreT", "", false},
		{"gateway without a configured password", open, "g", GatewayUser, "", "", false},
		{"device taking Watchroom's client id", open, "watchroom-1", "d1", secret, "", false},
		{"anonymous taking Watchroom's client id", open, "watchroom-1", "", "", "", false},
		{"device with its own will topic", open, "d1w", "d1", secret, "devices/d1/responses", true},
		{"device with a will forging another's response", open, "d1x", "d1", secret, "devices/d2/responses", false},
		{"anonymous with a will on commands", open, "a4", "", "", "devices/d1/commands", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryConnect(tt.b.URL(), tt.clientID, tt.user, tt.pass, tt.will)
			if (err == nil) != tt.ok {
				t.Errorf("connect: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"d1", "sensors/d1", true, true},
		{"d1", "sensors/d1/temperature", true, true},
		{"d1", "sensors/d10/temperature", true, false},
		{"d1", "sensors/d2", true, false},
		{"d1", "devices/d1/responses", true, true},
		{"d1", "devices/d2/responses", true, false},
		{"d1", "devices/d1/commands", true, false},
		{"d1", "devices/d1/commands", false, true},
		{"d1", "devices/+/commands", false, false},
		{"d1", "sensors/#", false, false},
		{"", "sensors/x/t", true, true},
		{"", "sensors", true, false},
		{"", "devices/x/responses", true, false},
		{"", "sensors/#", false, false},
		{GatewayUser, "sensors/any/t", true, true},
		{GatewayUser, "devices/any/responses", true, true},
		{GatewayUser, "devices/any/commands", true, false},
		{GatewayUser, "devices/+/commands", false, true},
		{GatewayUser, "devices/s-1/commands", false, true},
		{GatewayUser, "sensors/#", false, false},
		{ServiceUser, "#", false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s write=%v", tt.user, tt.topic, tt.write), func(t *testing.T) {
			if got := allowed(tt.user, tt.topic, tt.write); got != tt.want {
				t.Errorf("allowed = %v, want %v", got, tt.want)
			}
		})
	}
}
