package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/model"
)

// DeviceService registers and revokes MQTT device identities (cmd/watchroom
// wires the store and the embedded broker behind it).
type DeviceService interface {
	Devices(ctx context.Context) ([]Device, error)
	// AddDevice registers id and returns its new secret, which is stored
	// hashed and cannot be read again. An id that is registered already
	// gives an error matching ErrDeviceExists; an id the broker reserves
	// (or an invalid one), an error matching ErrDeviceID.
	AddDevice(ctx context.Context, id, createdBy string) (secret string, err error)
	// RevokeDevice refuses the device from now on and disconnects it; an
	// id that is not an active device gives an error matching
	// model.ErrNotFound.
	RevokeDevice(ctx context.Context, id string) error
}

// Errors of DeviceService.AddDevice.
var (
	ErrDeviceExists = errors.New("device already registered")
	ErrDeviceID     = errors.New("invalid device id")
)

// Device is a registered device as the API shows it: never its secret or
// the secret's hash.
type Device struct {
	ID        string     `json:"id"`
	Active    bool       `json:"active"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// Device ids are not secret (they are sensor ids, shown on every tile), so
// every signed-in user may list them, which is what the dashboard's
// "registered" badge reads; adding and revoking are for admins.
const minRoleToManageDevices = model.RoleAdmin

func (a *App) deviceRoutes(api fiber.Router) {
	api.Get("/devices", a.getDevices)
	api.Post("/devices", a.postDevice)
	api.Delete("/devices/:id", a.deleteDevice)
}

func (a *App) getDevices(c *fiber.Ctx) error {
	ds, err := a.cfg.Devices.Devices(c.UserContext())
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []Device{}
	}
	return c.JSON(fiber.Map{"devices": ds})
}

func (a *App) requireDeviceAdmin(c *fiber.Ctx) error {
	if cl := claimsOf(c); !cl.Role.AtLeast(minRoleToManageDevices) {
		a.m.rejected.WithLabelValues("forbidden").Inc()
		return apiError(fiber.StatusForbidden, "forbidden",
			"managing devices needs role "+string(minRoleToManageDevices)+"; you are "+string(cl.Role))
	}
	return nil
}

func (a *App) postDevice(c *fiber.Ctx) error {
	if err := a.requireDeviceAdmin(c); err != nil {
		return err
	}
	const shape = `body must be {"id":"<device id>"}`
	var body struct {
		ID string `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || dec.More() {
		return apiError(fiber.StatusBadRequest, "bad_request", shape)
	}
	if err := model.ValidID(body.ID); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "id: "+err.Error())
	}
	secret, err := a.cfg.Devices.AddDevice(c.UserContext(), body.ID, claimsOf(c).User)
	switch {
	case errors.Is(err, ErrDeviceExists):
		return apiError(fiber.StatusConflict, "conflict", "device "+body.ID+" is registered already; revoke it first to issue a new secret")
	case errors.Is(err, ErrDeviceID):
		return apiError(fiber.StatusBadRequest, "bad_request", err.Error())
	case err != nil:
		return err
	}
	a.cfg.Log.Info("device registered", "device", body.ID, "by", claimsOf(c).User)
	// The secret is in this response only: no cache may keep it.
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": body.ID, "secret": secret})
}

func (a *App) deleteDevice(c *fiber.Ctx) error {
	if err := a.requireDeviceAdmin(c); err != nil {
		return err
	}
	id := c.Params("id")
	if err := model.ValidID(id); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "id: "+err.Error())
	}
	err := a.cfg.Devices.RevokeDevice(c.UserContext(), id)
	if errors.Is(err, model.ErrNotFound) {
		return apiError(fiber.StatusNotFound, "not_found", "no active device "+id)
	}
	if err != nil {
		return err
	}
	a.cfg.Log.Info("device revoked", "device", id, "by", claimsOf(c).User)
	return c.SendStatus(fiber.StatusNoContent)
}
