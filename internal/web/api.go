package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

const claimsKey = "watchroom.claims"

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *App) postLogin(c *fiber.Ctx) error {
	// Only JSON: a browser sends it cross-site only after a CORS preflight
	// this server never answers, so a form on another site cannot post a
	// login (login CSRF).
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		a.reject(reasonLoginNotJSON, "content_type", model.Truncate(c.Get(fiber.HeaderContentType), 80))
		return apiError(fiber.StatusUnsupportedMediaType, "unsupported_media_type",
			`POST /api/login takes Content-Type: application/json with {"username":...,"password":...}`)
	}
	addr := c.IP()
	if ok, wait := a.login.allowAddr(addr); !ok {
		a.reject(reasonLoginAddrLimited, "addr", addr)
		c.Set(fiber.HeaderRetryAfter, retryAfter(wait))
		return apiError(fiber.StatusTooManyRequests, "rate_limited", "too many login attempts from your address; retry after "+retryAfter(wait)+" s")
	}
	var req loginRequest
	if err := c.BodyParser(&req); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", `body must be JSON {"username":...,"password":...}`)
	}
	if req.Username == "" || req.Password == "" {
		return apiError(fiber.StatusBadRequest, "bad_request", "username and password are required")
	}
	if model.ValidID(req.Username) != nil {
		// No such user can exist (names are checked on creation), and the
		// name is not a key for the account table: it could be 64 KiB long.
		_ = auth.CheckNoUser(req.Password)
		a.reject(reasonLoginFailed, "addr", addr)
		return apiError(fiber.StatusUnauthorized, "unauthorized", "wrong user name or password")
	}
	if ok, wait := a.login.allowAccount(req.Username, addr); !ok {
		a.reject(reasonLoginAccountHeld, "addr", addr) // no user name: it may be a mistyped password
		c.Set(fiber.HeaderRetryAfter, retryAfter(wait))
		return apiError(fiber.StatusTooManyRequests, "rate_limited", "too many failed logins for this account; retry after "+retryAfter(wait)+" s")
	}
	u, err := a.cfg.Store.User(c.UserContext(), req.Username)
	switch {
	case errors.Is(err, model.ErrNotFound):
		_ = auth.CheckNoUser(req.Password)
		err = errors.New("no such user")
	case err != nil:
		return err
	default:
		err = auth.CheckPassword(u.PasswordHash, req.Password)
	}
	if err != nil {
		// Unknown names are held like real ones: the answer must not tell
		// which exist.
		a.login.failed(req.Username)
		a.reject(reasonLoginFailed, "addr", addr)
		return apiError(fiber.StatusUnauthorized, "unauthorized", "wrong user name or password")
	}
	a.login.succeeded(u.Name, addr)
	tok, exp, err := a.cfg.Tokens.Issue(c.UserContext(), u.Name, u.Role)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"token": tok, "expires_at": protocol.FormatTime(exp), "user": u.Name, "role": u.Role})
}

func (a *App) requireAuth(c *fiber.Ctx) error {
	// The scheme name is case-insensitive (RFC 9110, section 11.1).
	scheme, tok, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		a.reject(reasonNoToken)
		return apiError(fiber.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token> (from POST /api/login)")
	}
	cl, err := a.cfg.Tokens.Verify(c.UserContext(), tok)
	if err != nil && !errors.Is(err, auth.ErrBadToken) && !errors.Is(err, auth.ErrRevoked) {
		return fmt.Errorf("verify token: %w", err) // the database failed, not the token
	}
	if err != nil {
		a.reject(reasonBadToken)
		return apiError(fiber.StatusUnauthorized, "unauthorized", "invalid, expired or revoked token; log in again")
	}
	c.Locals(claimsKey, cl)
	return c.Next()
}

func claimsOf(c *fiber.Ctx) auth.Claims {
	cl, _ := c.Locals(claimsKey).(auth.Claims)
	return cl
}

func (a *App) getMe(c *fiber.Ctx) error {
	cl := claimsOf(c)
	return c.JSON(fiber.Map{"user": cl.User, "role": cl.Role, "expires_at": protocol.FormatTime(cl.ExpiresAt)})
}

func (a *App) getSensors(c *fiber.Ctx) error {
	ss, err := a.cfg.Store.Sensors(c.UserContext())
	if err != nil {
		return err
	}
	if ss == nil {
		ss = []model.Sensor{}
	}
	return c.JSON(ss)
}

const (
	defaultReadingsLimit = 1000
	maxReadingsLimit     = 10000
	maxBuckets           = 5000
)

func (a *App) getReadings(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := model.ValidID(id); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "sensor id: "+err.Error())
	}
	metric := c.Query("metric")
	if metric != "" {
		if err := model.ValidID(metric); err != nil {
			return apiError(fiber.StatusBadRequest, "bad_request", "metric: "+err.Error())
		}
	}
	now := time.Now()
	to, err := timeParam(c, "to", now)
	if err != nil {
		return err
	}
	from, err := timeParam(c, "from", to.Add(-time.Hour))
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return apiError(fiber.StatusBadRequest, "bad_request", "from must be before to")
	}
	limit, err := intParam(c, "limit", defaultReadingsLimit, 1, maxReadingsLimit)
	if err != nil {
		return err
	}
	if b := c.Query("bucket"); b != "" {
		// Checked here, not left to the store: its error would be a 500.
		if metric == "" {
			return apiError(fiber.StatusBadRequest, "bad_request", "bucket needs metric: values of different metrics do not average")
		}
		d, err := time.ParseDuration(b)
		if err != nil || d < time.Second {
			return apiError(fiber.StatusBadRequest, "bad_request", "bucket must be a duration of at least 1s, e.g. 1m")
		}
		if to.Sub(from)/d > maxBuckets {
			return apiError(fiber.StatusBadRequest, "bad_request", "too many buckets: widen bucket or narrow the range (at most 5000)")
		}
		bs, err := a.cfg.Store.ReadingBuckets(c.UserContext(), id, metric, from, to, d, limit)
		if err != nil {
			return err
		}
		if bs == nil {
			bs = []model.Bucket{}
		}
		return c.JSON(fiber.Map{"sensor_id": id, "metric": metric, "bucket": d.String(), "buckets": bs})
	}
	rs, err := a.cfg.Store.Readings(c.UserContext(), id, metric, from, to, limit)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []model.Reading{}
	}
	return c.JSON(fiber.Map{"sensor_id": id, "metric": metric, "readings": rs})
}

func (a *App) getCommands(c *fiber.Ctx) error {
	id := c.Query("sensor_id")
	if id != "" {
		if err := model.ValidID(id); err != nil {
			return apiError(fiber.StatusBadRequest, "bad_request", "sensor_id: "+err.Error())
		}
	}
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	cs, err := a.cfg.Store.Commands(c.UserContext(), id, limit)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []model.Command{}
	}
	if claimsOf(c).Role.AtLeast(minRoleToSeeCommandIDs) {
		return c.JSON(fiber.Map{"commands": cs})
	}
	out := make([]redactedCommand, len(cs))
	for i := range cs {
		out[i].Command = cs[i]
	}
	return c.JSON(fiber.Map{"commands": out})
}

// minRoleToSeeCommandIDs may see the id and params of each command. A
// command's id is all it takes to answer it in the device's name on
// devices/{id}/responses while it is pending, and its params may hold what
// only those who may send commands should read. Everyone else gets the
// history without them.
const minRoleToSeeCommandIDs = model.RoleOperator

// redactedCommand is a model.Command without command_id and params.
type redactedCommand struct{ model.Command }

// MarshalJSON writes the command as model.Command does, less command_id
// and params. (Embedding alone would not do: model.Command's MarshalJSON
// is promoted and would write them.)
func (r redactedCommand) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(r.Command)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "command_id")
	delete(m, "params")
	return json.Marshal(m)
}

// dataReporter is the optional part of Store behind /api/stats' "data":
// raw partitions, rollup sizes and retention drops (store.DataStats;
// docs/storage.md). Optional, so that test stores need not report it.
type dataReporter interface {
	DataReport(ctx context.Context) (any, error)
}

func (a *App) getStats(c *fiber.Ctx) error {
	dr, ok := a.cfg.Store.(dataReporter)
	if !ok {
		return c.JSON(a.cfg.Hub.Stats())
	}
	data, err := dr.DataReport(c.UserContext())
	if err != nil {
		return err
	}
	// Embedded: the hub's fields stay at the top level, as before.
	return c.JSON(struct {
		hub.Stats
		Data any `json:"data"`
	}{a.cfg.Hub.Stats(), data})
}

// timeParam reads an RFC 3339 time or Unix milliseconds.
func timeParam(c *fiber.Ctx, name string, def time.Time) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, apiError(fiber.StatusBadRequest, "bad_request", name+" must be an RFC 3339 time or Unix milliseconds")
}

func intParam(c *fiber.Ctx, name string, def, min, max int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, apiError(fiber.StatusBadRequest, "bad_request", name+" must be an integer from "+strconv.Itoa(min)+" to "+strconv.Itoa(max))
	}
	return n, nil
}
