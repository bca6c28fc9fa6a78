package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/model"
)

// AlertService is what the alerts, rules and silences REST routes need (the alerts
// package's Detector). Not-found errors match model.ErrNotFound.
type AlertService interface {
	Alerts(ctx context.Context, f model.AlertFilter) ([]model.Alert, error)
	Alert(ctx context.Context, id int64) (model.Alert, error)
	AlertMessages(ctx context.Context, alertID int64, limit int) ([]model.ChatMessage, error)
	Rules(ctx context.Context, sensorID string) ([]model.AlertRule, error)
	// SetRules replaces every rule of sensorID; rules have passed
	// model.ValidateAlertRules.
	SetRules(ctx context.Context, sensorID, user string, rules []model.AlertRule) ([]model.AlertRule, error)
	Silences(ctx context.Context, f model.SilenceFilter) ([]model.Silence, error)
	// CreateSilence stores si by user; si has passed
	// model.ValidateSilence.
	CreateSilence(ctx context.Context, user string, si model.Silence) (model.Silence, error)
	// EndSilence ends silence id early; errors match model.ErrNotFound
	// (no such silence) and model.ErrConflict (it already ended or
	// expired).
	EndSilence(ctx context.Context, id int64, user string) (model.Silence, error)
}

const (
	defaultAlertsLimit   = 100
	maxAlertsLimit       = 1000
	alertMessagesLimit   = 500
	minRoleToChangeRules = model.RoleOperator
)

func (a *App) alertRoutes(api fiber.Router) {
	api.Get("/alerts", a.getAlerts)
	api.Get("/alerts/:id", a.getAlert)
	api.Get("/sensors/:id/rules", a.getRules)
	api.Put("/sensors/:id/rules", a.putRules)
	a.silenceRoutes(api)
}

func (a *App) getAlerts(c *fiber.Ctx) error {
	var f model.AlertFilter
	for _, s := range strings.Split(c.Query("state"), ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case model.AlertOpen, model.AlertAcknowledged, model.AlertResolved:
			f.States = append(f.States, s)
		case "live":
			f.States = append(f.States, model.AlertOpen, model.AlertAcknowledged)
		default:
			return apiError(fiber.StatusBadRequest, "bad_request",
				"state must be open, acknowledged, resolved or live (open and acknowledged), or several separated by commas")
		}
	}
	if id := c.Query("sensor_id"); id != "" {
		if err := model.ValidID(id); err != nil {
			return apiError(fiber.StatusBadRequest, "bad_request", "sensor_id: "+err.Error())
		}
		f.SensorID = id
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return apiError(fiber.StatusBadRequest, "bad_request", "before must be an alert id (a positive integer)")
		}
		f.BeforeID = n
	}
	limit, err := intParam(c, "limit", defaultAlertsLimit, 1, maxAlertsLimit)
	if err != nil {
		return err
	}
	f.Limit = limit
	as, err := a.cfg.Alerts.Alerts(c.UserContext(), f)
	if err != nil {
		return err
	}
	if as == nil {
		as = []model.Alert{}
	}
	return c.JSON(fiber.Map{"alerts": as})
}

func (a *App) getAlert(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return apiError(fiber.StatusBadRequest, "bad_request", "alert id must be a positive integer")
	}
	al, err := a.cfg.Alerts.Alert(c.UserContext(), id)
	if errors.Is(err, model.ErrNotFound) {
		return apiError(fiber.StatusNotFound, "not_found", "no alert "+strconv.FormatInt(id, 10))
	}
	if err != nil {
		return err
	}
	msgs, err := a.cfg.Alerts.AlertMessages(c.UserContext(), id, alertMessagesLimit)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []model.ChatMessage{}
	}
	return c.JSON(fiber.Map{"alert": al, "note": al.Note, "messages": msgs})
}

func (a *App) getRules(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := model.ValidID(id); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "sensor id: "+err.Error())
	}
	rules, err := a.cfg.Alerts.Rules(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(rulesBody(id, rules))
}

// ruleIn is one rule as PUT accepts it. sensor_id, updated_by and
// updated_at are accepted and ignored, so that what GET returned can be
// sent back as it is; any other unknown field is refused (a typo such as
// "maximum" must not silently store a rule without a limit).
type ruleIn struct {
	Metric       string          `json:"metric"`
	Kind         string          `json:"kind"`
	Enabled      *bool           `json:"enabled"`
	Min          *float64        `json:"min"`
	Max          *float64        `json:"max"`
	K            *float64        `json:"k"`
	Warmup       *int            `json:"warmup"`
	AfterSeconds *float64        `json:"after_seconds"`
	ResolveAfter *int            `json:"resolve_after"`
	SensorID     json.RawMessage `json:"sensor_id"`
	UpdatedBy    json.RawMessage `json:"updated_by"`
	UpdatedAt    json.RawMessage `json:"updated_at"`
}

const rulesShape = `body must be {"rules":[{"metric":"temperature","kind":"threshold","min":-10,"max":60}, ...]}`

func (a *App) putRules(c *fiber.Ctx) error {
	cl := claimsOf(c)
	if err := a.needRole(c, minRoleToChangeRules, "changing alert rules"); err != nil {
		return err
	}
	id := c.Params("id")
	if err := model.ValidID(id); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "sensor id: "+err.Error())
	}
	var body struct {
		Rules *[]ruleIn `json:"rules"`
		// What GET adds, accepted and ignored (see ruleIn).
		SensorID json.RawMessage `json:"sensor_id"`
		Defaults json.RawMessage `json:"defaults"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", rulesShape+": "+jsonProblem(err))
	}
	if dec.More() {
		return apiError(fiber.StatusBadRequest, "bad_request", rulesShape+": data after the JSON object")
	}
	if body.Rules == nil {
		return apiError(fiber.StatusBadRequest, "bad_request", rulesShape+` ("rules":[] removes every rule)`)
	}
	rules := make([]model.AlertRule, len(*body.Rules))
	for i, in := range *body.Rules {
		rules[i] = model.AlertRule{
			Metric: in.Metric, Kind: in.Kind, Enabled: in.Enabled == nil || *in.Enabled,
			Min: in.Min, Max: in.Max, K: in.K, Warmup: in.Warmup, AfterSeconds: in.AfterSeconds, ResolveAfter: in.ResolveAfter,
		}
	}
	if err := model.ValidateAlertRules(rules); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	stored, err := a.cfg.Alerts.SetRules(c.UserContext(), id, cl.User, rules)
	if err != nil {
		return err
	}
	return c.JSON(rulesBody(id, stored))
}

// needRole answers 403 (counted as a rejection) unless the caller has
// role min or above; what names the action in the message.
func (a *App) needRole(c *fiber.Ctx, min model.Role, what string) error {
	cl := claimsOf(c)
	if cl.Role.AtLeast(min) {
		return nil
	}
	a.reject(reasonForbidden, "route", c.Route().Path, "user", cl.User)
	return apiError(fiber.StatusForbidden, "forbidden", what+" needs role "+string(min)+" or above; you are "+string(cl.Role))
}

func rulesBody(sensorID string, rules []model.AlertRule) fiber.Map {
	if rules == nil {
		rules = []model.AlertRule{}
	}
	return fiber.Map{"sensor_id": sensorID, "rules": rules, "defaults": ruleDefaults()}
}

// ruleDefaults describes what applies where no rule is stored.
func ruleDefaults() fiber.Map {
	return fiber.Map{
		"threshold": fiber.Map{"enabled": false, "resolve_after": model.DefaultResolveAfter},
		"spike": fiber.Map{"enabled": true, "k": model.DefaultSpikeK, "warmup": model.DefaultSpikeWarmup,
			"resolve_after": model.DefaultResolveAfter},
		"stale": fiber.Map{"enabled": true, "min_after_seconds": model.DefaultStaleMin.Seconds(),
			"interval_factor": model.DefaultStaleFactor},
	}
}

// jsonProblem says what is wrong with a JSON body without quoting it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + strconv.Quote(te.Field) + " must be " + jsonKind(te.Type.Kind().String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "ptr", "struct":
		return "an object or null"
	}
	return "of another type"
}
