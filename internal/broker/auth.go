package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
)

// User names of the broker's own users. Devices are named by their id, so
// these two ids are reserved: `device add` refuses them (ReservedUser).
const (
	// ServiceUser is the user of Watchroom's own clients (ingest, commands):
	// they read everything and publish commands.
	ServiceUser = "watchroom"
	// GatewayUser may act for every device: publish readings under
	// sensors/#, read devices/+/commands and answer on
	// devices/+/responses. The simulator uses it; so may a protocol gateway
	// that speaks for many devices over one connection.
	GatewayUser = "gateway"
)

// ReservedUser reports whether name is one of the broker's own users, which
// no device may be called.
func ReservedUser(name string) bool { return name == ServiceUser || name == GatewayUser }

// DefaultAuthCacheTTL is how long a device's registration is trusted before
// it is read again: a device revoked from another process (`watchroom
// device revoke`) is refused and disconnected within about this time.
const DefaultAuthCacheTTL = 5 * time.Second

// DeviceStore looks up device secrets; *store.Store satisfies it.
type DeviceStore interface {
	// DeviceSecretHash returns the Mosquitto $7$ hash of an active device,
	// or an error matching model.ErrNotFound when there is none (unknown
	// or revoked).
	DeviceSecretHash(ctx context.Context, id string) (string, error)
	// DevicesRevokedSince returns the devices revoked after since (the
	// database's clock) and the latest revocation time seen, since if none.
	DevicesRevokedSince(ctx context.Context, since time.Time) ([]string, time.Time, error)
}

// AuthConfig turns on authentication and authorization in the embedded
// broker. Who may do what:
//
//   - ServiceUser with ServicePassword: everything;
//   - GatewayUser with GatewayPassword (when set): readings of any device,
//     commands and responses of any device, nothing else;
//   - a device, user name = its id, password = its secret: publish under
//     sensors/{id} and sensors/{id}/..., publish devices/{id}/responses,
//     subscribe to devices/{id}/commands; nothing else;
//   - anonymous clients (no user name), only while AllowAnonymous: publish
//     under sensors/..., nothing else (no subscription at all).
//
// A client that gives a user name is never treated as anonymous, whatever
// its password.
type AuthConfig struct {
	Devices         DeviceStore
	ServicePassword string // required
	GatewayPassword string // empty: no gateway user
	AllowAnonymous  bool
	// ServiceClientIDs are the client ids of Watchroom's own clients. Any
	// other user is refused them: connecting with the id of a persistent
	// session would take that session over and throw Watchroom's client
	// off the broker.
	ServiceClientIDs []string
	CacheTTL         time.Duration // 0: DefaultAuthCacheTTL
	// lookupTimeout bounds one database lookup; 0 means 2 seconds.
	lookupTimeout time.Duration
}

// authHook is the mochi hook enforcing AuthConfig. mochi calls its methods
// from each client's own goroutines, concurrently; the cache is guarded by
// mu.
type authHook struct {
	mqtt.HookBase
	cfg    AuthConfig
	log    *slog.Logger
	denied *prometheus.CounterVec // refusals by reason

	mu    sync.Mutex
	cache map[string]deviceEntry // device id → last lookup
}

type deviceEntry struct {
	hash    string // "" when not active
	fetched time.Time
}

var _ mqtt.Hook = (*authHook)(nil)

func newAuthHook(cfg AuthConfig, log *slog.Logger) *authHook {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultAuthCacheTTL
	}
	if cfg.lookupTimeout <= 0 {
		cfg.lookupTimeout = 2 * time.Second
	}
	return &authHook{
		cfg: cfg,
		log: log,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_broker_denied_total",
			Help: "Connections and topic accesses the embedded broker refused, by reason.",
		}, []string{"reason"}),
		cache: make(map[string]deviceEntry),
	}
}

func (h *authHook) ID() string { return "watchroom-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate checks the user name and password of a CONNECT,
// and that its will message (which mochi publishes without an ACL check)
// is one the user may publish.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	ok, reason := h.authenticate(user, pass)
	if ok && user != ServiceUser && slices.Contains(h.cfg.ServiceClientIDs, cl.ID) {
		ok, reason = false, "service_client_id"
	}
	if ok && pk.Connect.WillFlag && !allowed(user, pk.Connect.WillTopic, true) {
		ok, reason = false, "will_topic"
	}
	if !ok {
		h.denied.WithLabelValues(reason).Inc()
		// The user name is what the client claims: log it, never the password.
		h.log.Info("MQTT connection refused", "reason", reason, "user", user, "client_id", cl.ID, "remote", cl.Net.Remote)
	}
	return ok
}

func (h *authHook) authenticate(user string, pass []byte) (bool, string) {
	switch {
	case user == "":
		if len(pass) > 0 || !h.cfg.AllowAnonymous {
			return false, "anonymous"
		}
		return true, ""
	case user == ServiceUser:
		return equalSecret(pass, h.cfg.ServicePassword), "bad_password"
	case user == GatewayUser:
		return h.cfg.GatewayPassword != "" && equalSecret(pass, h.cfg.GatewayPassword), "bad_password"
	}
	hash, err := h.deviceHash(user, true)
	if err != nil {
		return false, "lookup_failed"
	}
	if hash == "" {
		return false, "unknown_device"
	}
	if !VerifySecret(hash, string(pass)) {
		return false, "bad_password"
	}
	return true, ""
}

// equalSecret compares in constant time. The length of want may leak; it
// is that of a generated or configured secret, not a secret itself.
func equalSecret(got []byte, want string) bool {
	return want != "" && subtle.ConstantTimeCompare(got, []byte(want)) == 1
}

// OnACLCheck allows a publish (write) or a subscription or delivery (read)
// of topic. A device that has been revoked since it connected is refused and
// disconnected.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if !allowed(user, topic, write) {
		h.denied.WithLabelValues("topic").Inc()
		return false
	}
	if user == "" || user == ServiceUser || user == GatewayUser {
		return true
	}
	if hash, err := h.deviceHash(user, false); err == nil && hash == "" {
		h.denied.WithLabelValues("revoked").Inc()
		h.log.Info("disconnecting revoked device", "device", user, "client_id", cl.ID)
		cl.Stop(packets.ErrNotAuthorized)
		return false
	}
	// A failed lookup with no earlier answer keeps the connected device
	// going: it authenticated, and a database outage should not also cut
	// the readings that the broker can queue for ingest.
	return true
}

// allowed is the topic policy of AuthConfig for an authenticated user.
func allowed(user, topic string, write bool) bool {
	switch user {
	case ServiceUser:
		return true
	case GatewayUser:
		if write {
			return under(topic, "sensors") || isDeviceTopic(topic, "responses")
		}
		// Subscriptions arrive as filters, deliveries as topics.
		return matchesDevice(topic, "+", "commands") || isDeviceTopic(topic, "commands")
	case "":
		return write && under(topic, "sensors")
	}
	if write {
		return topic == "sensors/"+user || strings.HasPrefix(topic, "sensors/"+user+"/") && !strings.ContainsAny(topic, "+#") ||
			topic == "devices/"+user+"/responses"
	}
	return topic == "devices/"+user+"/commands"
}

// under reports whether topic is strictly below root with no wildcard (a
// publish topic never has one; mochi checks, but say so here too).
func under(topic, root string) bool {
	return strings.HasPrefix(topic, root+"/") && len(topic) > len(root)+1 && !strings.ContainsAny(topic, "+#")
}

func matchesDevice(topic, id, leaf string) bool { return topic == "devices/"+id+"/"+leaf }

// isDeviceTopic reports whether topic is devices/{one level}/leaf.
func isDeviceTopic(topic, leaf string) bool {
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return false
	}
	id, l, ok := strings.Cut(rest, "/")
	return ok && l == leaf && id != "" && !strings.ContainsAny(id, "+#")
}

// deviceHash returns the device's hash, "" when it is not active. fresh
// reads the database whatever the cache holds (a connect). When the lookup
// fails, the last answer is used if there is one.
func (h *authHook) deviceHash(id string, fresh bool) (string, error) {
	h.mu.Lock()
	e, cached := h.cache[id]
	h.mu.Unlock()
	if cached && !fresh && time.Since(e.fetched) < h.cfg.CacheTTL {
		return e.hash, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.lookupTimeout)
	defer cancel()
	hash, err := h.cfg.Devices.DeviceSecretHash(ctx, id)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		h.log.Warn("device lookup failed", "device", id, "err", err)
		if cached {
			return e.hash, nil
		}
		return "", err
	}
	h.mu.Lock()
	h.cache[id] = deviceEntry{hash: hash, fetched: time.Now()}
	h.mu.Unlock()
	return hash, nil
}

// forget drops the cached answers for ids, so their next check reads the
// database.
func (h *authHook) forget(ids ...string) {
	h.mu.Lock()
	for _, id := range ids {
		delete(h.cache, id)
	}
	h.mu.Unlock()
}
