package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/model"
)

const (
	defaultSilencesLimit = 100
	maxSilencesLimit     = 1000
	minRoleToSilence     = model.RoleOperator
)

func (a *App) silenceRoutes(api fiber.Router) {
	api.Get("/silences", a.getSilences)
	api.Post("/silences", a.postSilence)
	api.Delete("/silences/:id", a.deleteSilence)
}

func (a *App) getSilences(c *fiber.Ctx) error {
	var f model.SilenceFilter
	if id := c.Query("sensor_id"); id != "" {
		if err := model.ValidID(id); err != nil {
			return apiError(fiber.StatusBadRequest, "bad_request", "sensor_id: "+err.Error())
		}
		f.SensorID = id
	}
	switch c.Query("active") {
	case "", "false":
	case "true":
		f.InForce = a.cfg.Now()
	default:
		return apiError(fiber.StatusBadRequest, "bad_request", "active must be true (only silences in force) or false")
	}
	limit, err := intParam(c, "limit", defaultSilencesLimit, 1, maxSilencesLimit)
	if err != nil {
		return err
	}
	f.Limit = limit
	list, err := a.cfg.Alerts.Silences(c.UserContext(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []model.Silence{}
	}
	return c.JSON(fiber.Map{"silences": list})
}

const silenceShape = `body must be {"sensor_id":"boiler-1","duration_seconds":3600,"reason":"..."}` +
	` (add "metric" and "kind" to silence one rule; "until" instead of "duration_seconds" for an end time)`

func (a *App) postSilence(c *fiber.Ctx) error {
	cl := claimsOf(c)
	if err := a.needRole(c, minRoleToSilence, "silencing"); err != nil {
		return err
	}
	var body struct {
		SensorID        string     `json:"sensor_id"`
		Metric          string     `json:"metric"`
		Kind            string     `json:"kind"`
		Until           *time.Time `json:"until"`
		DurationSeconds *float64   `json:"duration_seconds"`
		Reason          string     `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", silenceShape+": "+jsonProblem(err))
	}
	if dec.More() {
		return apiError(fiber.StatusBadRequest, "bad_request", silenceShape+": data after the JSON object")
	}
	now := a.cfg.Now()
	si := model.Silence{SensorID: body.SensorID, Metric: body.Metric, Kind: body.Kind, Reason: strings.TrimSpace(body.Reason)}
	switch {
	case (body.Until == nil) == (body.DurationSeconds == nil):
		return apiError(fiber.StatusBadRequest, "bad_request", "send either until (a time) or duration_seconds, not both")
	case body.Until != nil:
		si.Until = *body.Until
	default:
		si.Until = now.Add(time.Duration(*body.DurationSeconds * float64(time.Second)))
	}
	if err := model.ValidateSilence(si, now); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	stored, err := a.cfg.Alerts.CreateSilence(c.UserContext(), cl.User, si)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"silence": stored})
}

func (a *App) deleteSilence(c *fiber.Ctx) error {
	cl := claimsOf(c)
	if err := a.needRole(c, minRoleToSilence, "ending a silence"); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return apiError(fiber.StatusBadRequest, "bad_request", "silence id must be a positive integer")
	}
	si, err := a.cfg.Alerts.EndSilence(c.UserContext(), id, cl.User)
	switch {
	case errors.Is(err, model.ErrNotFound):
		return apiError(fiber.StatusNotFound, "not_found", "no silence "+strconv.FormatInt(id, 10))
	case errors.Is(err, model.ErrConflict):
		return apiError(fiber.StatusConflict, "conflict", strings.TrimSuffix(err.Error(), ": "+model.ErrConflict.Error()))
	case err != nil:
		return err
	}
	return c.JSON(fiber.Map{"silence": si})
}
