package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `watchroom serve` and `watchroom demo` need.
type Config struct {
	HTTPAddr    string
	DatabaseURL string
	MQTTURL     string // empty: start the embedded broker
	MQTTListen  string // address of the embedded broker
	MQTTTopics  []string
	// InstanceID names this instance among those sharing the database;
	// two running instances never share one (serve claims it at start).
	InstanceID string
	// MQTTClientID defaults to one derived from InstanceID (ClientIDFor).
	MQTTClientID string
	// MQTTShareGroup, when set, makes ingest subscribe through the shared
	// subscription $share/{group}/{topic}: several instances ingest each
	// reading once. Empty: a plain subscription.
	MQTTShareGroup string
	// Ingest is how the instances of a share group ingest: IngestShared
	// (each reading to one of them through $share) or IngestElected (one
	// elected instance at a time, one persistent session).
	Ingest string
	// BackplaneHold is how long a batch from another instance whose
	// predecessor is missing waits before the gap is read from PostgreSQL
	// (with MQTTShareGroup only).
	BackplaneHold time.Duration
	// MQTTGatewayPassword, when set, lets user "gateway" act for every
	// device on the embedded broker (and goes into the exported Mosquitto
	// password file).
	MQTTGatewayPassword string
	// Sensors is "open" (anyone may publish readings, anonymous clients
	// included) or "registered" (only registered devices).
	Sensors        string
	JWTSecret      string // empty: generated once and kept in the database
	JWTTTL         time.Duration
	AllowedOrigins []string // empty: same host only
	AdminPassword  string

	MetricsAddr    string // empty: no metrics listener
	TLSCert        string // with TLSKey: serve HTTPS
	TLSKey         string
	TrustedProxies []string

	RoomsPerUser    int
	RoomCreateRate  float64 // rooms a user may create per minute
	RoomCreateBurst int

	BatchSize     int
	FlushInterval time.Duration
	IngestQueue   int
	CommitTimeout time.Duration

	NewSeriesRate  float64 // new series (sensor, metric) ingest may create per second
	NewSeriesBurst int

	WSSendQueue    int
	WSAuthTimeout  time.Duration
	WSPingInterval time.Duration
	WSRate         float64
	WSBurst        int
	WSWriteTimeout time.Duration
	WSSendBuffer   int
	WSHighWater    int
	WSMaxPerUser   int
	WSMaxPerAddr   int
	ResumeMax      int
	ResumeMaxAge   time.Duration

	CommandTimeout time.Duration
	PresenceGrace  time.Duration

	// Data lifecycle (docs/storage.md). A retention of 0 keeps data forever.
	RetentionRaw        time.Duration
	MaxRawBytes         int64 // 0: no size budget
	Retention1m         time.Duration
	Retention1h         time.Duration
	PartitionsAhead     int // daily partitions created ahead of today
	DataMaintenanceTick time.Duration

	LogLevel  string
	LogFormat string
}

// minNewSeriesBurst is ingest.MaxValuesPerMessage: a message is admitted
// whole, with a token per new series it carries. (Not imported: config
// stays free of the packages it configures.)
const minNewSeriesBurst = 256

// Values of Config.Ingest.
const (
	IngestShared  = "shared"
	IngestElected = "elected"
)

// Values of Config.Sensors.
const (
	SensorsOpen       = "open"
	SensorsRegistered = "registered"
)

// Var describes one setting: its environment variable, its flag, its
// default as text and what it does. Secrets have no flag: a command line is
// visible to every user of the machine.
type Var struct {
	Env, Flag, Default, Usage string
	set                       func(c *Config, v string) error
}

// Vars lists every setting in the order the README shows them.
func Vars() []Var {
	return []Var{
		{"WATCHROOM_HTTP_ADDR", "http-addr", ":8080", "HTTP listen address (dashboard, REST, /ws)", str(func(c *Config) *string { return &c.HTTPAddr })},
		{"WATCHROOM_METRICS_ADDR", "metrics-addr", "127.0.0.1:9090", "listen address of /metrics (Prometheus), kept off the public port; use the same one on every instance; empty: no metrics", str(func(c *Config) *string { return &c.MetricsAddr })},
		{"WATCHROOM_TLS_CERT", "tls-cert", "", "PEM certificate chain file; with WATCHROOM_TLS_KEY the HTTP address serves HTTPS and wss://", str(func(c *Config) *string { return &c.TLSCert })},
		{"WATCHROOM_TLS_KEY", "tls-key", "", "PEM private key file of WATCHROOM_TLS_CERT", str(func(c *Config) *string { return &c.TLSKey })},
		{"WATCHROOM_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (login limits); empty: trust none", list(func(c *Config) *[]string { return &c.TrustedProxies })},
		{"WATCHROOM_DATABASE_URL", "database-url", "", "PostgreSQL URL, e.g. postgres://watchroom:secret@127.0.0.1:5432/watchroom (required by serve)", str(func(c *Config) *string { return &c.DatabaseURL })},
		{"WATCHROOM_MQTT_URL", "mqtt-url", "", "MQTT broker, e.g. tcp://127.0.0.1:1883; empty starts the embedded broker", str(func(c *Config) *string { return &c.MQTTURL })},
		{"WATCHROOM_MQTT_LISTEN", "mqtt-listen", ":1883", "listen address of the embedded broker (only when WATCHROOM_MQTT_URL is empty)", str(func(c *Config) *string { return &c.MQTTListen })},
		{"WATCHROOM_MQTT_TOPICS", "mqtt-topics", "sensors/#", "comma-separated topic filters to ingest (QoS 1)", list(func(c *Config) *[]string { return &c.MQTTTopics })},
		{"WATCHROOM_INSTANCE_ID", "instance-id", "<hostname>", "name of this instance among those sharing the database (letters, digits, '-', '_', '.'); stable across its restarts; a second instance with the same id refuses to start; the default MQTT client id derives from it", str(func(c *Config) *string { return &c.InstanceID })},
		{"WATCHROOM_MQTT_CLIENT_ID", "mqtt-client-id", "watchroom-<instance id>", "stable MQTT client id of this instance's persistent session; must differ between instances (a second instance with the same one refuses to start); empty: derived from WATCHROOM_INSTANCE_ID", str(func(c *Config) *string { return &c.MQTTClientID })},
		{"WATCHROOM_MQTT_SHARE_GROUP", "mqtt-share-group", "", "when set (e.g. watchroom), ingest subscribes to each topic as $share/{group}/{topic}, so that the instances sharing the group ingest each reading once, and committed readings reach every instance through the broker (topic watchroom/v1/readings); the same on every instance; needs WATCHROOM_MQTT_URL; empty: a plain subscription (every instance gets every reading), no backplane", str(func(c *Config) *string { return &c.MQTTShareGroup })},
		{"WATCHROOM_INGEST", "ingest", "shared", "with WATCHROOM_MQTT_SHARE_GROUP, how the instances ingest: shared (each reading to one instance through $share/{group}/…; spreads ingest, but Mosquitto drops what is published while a restart has left the group without members) or elected (one instance at a time, elected through PostgreSQL, holds one persistent session watchroom-{group}-ingest, which the broker keeps across its restarts and hands to the next instance; nothing lost, ingest on one instance)", str(func(c *Config) *string { return &c.Ingest })},
		{"WATCHROOM_BACKPLANE_HOLD", "backplane-hold", "250ms", "with WATCHROOM_MQTT_SHARE_GROUP: how long a committed batch waits for a missing predecessor (batches reach an instance out of order from different instances) before the gap is read from PostgreSQL", dur(func(c *Config) *time.Duration { return &c.BackplaneHold })},
		{"WATCHROOM_MQTT_GATEWAY_PASSWORD", "", "", "when set, MQTT user gateway may publish readings and answer commands for every device (the simulator, a protocol gateway); the embedded broker accepts it and `watchroom device export-mosquitto` writes it", str(func(c *Config) *string { return &c.MQTTGatewayPassword })},
		{"WATCHROOM_SENSORS", "sensors", "open", "open: anyone on the broker may publish readings, anonymous clients included; registered: only registered devices (`watchroom device add`)", str(func(c *Config) *string { return &c.Sensors })},
		{"WATCHROOM_JWT_SECRET", "", "", "HMAC secret for login tokens; empty: generated once and kept in the database", str(func(c *Config) *string { return &c.JWTSecret })},
		{"WATCHROOM_JWT_TTL", "jwt-ttl", "12h", "lifetime of a login token", dur(func(c *Config) *time.Duration { return &c.JWTTTL })},
		{"WATCHROOM_ALLOWED_ORIGINS", "allowed-origins", "", "comma-separated origins allowed to open /ws (e.g. https://watch.example.com); empty: same host only", list(func(c *Config) *[]string { return &c.AllowedOrigins })},
		{"WATCHROOM_ADMIN_PASSWORD", "", "", "when set, user admin is created or updated with this password at start", str(func(c *Config) *string { return &c.AdminPassword })},
		{"WATCHROOM_BATCH_SIZE", "batch-size", "5000", "readings per database batch (flush when reached)", intv(func(c *Config) *int { return &c.BatchSize })},
		{"WATCHROOM_FLUSH_INTERVAL", "flush-interval", "0s", "0: group commit (a batch is committed as soon as the previous commit ends); more: a batch also waits this long after its first reading", dur(func(c *Config) *time.Duration { return &c.FlushInterval })},
		{"WATCHROOM_INGEST_QUEUE", "ingest-queue", "10000", "MQTT messages buffered between the broker connection and the batch writer", intv(func(c *Config) *int { return &c.IngestQueue })},
		{"WATCHROOM_COMMIT_TIMEOUT", "commit-timeout", "10s", "deadline of each database commit of a batch of readings; a commit that does not finish in time is logged, counted and retried", dur(func(c *Config) *time.Duration { return &c.CommitTimeout })},
		{"WATCHROOM_NEW_SERIES_RATE", "new-series-rate", "10", "new series (sensor, metric never stored before) ingest may create per second, in every mode; readings of a refused one are rejected (reason new_series_limited)", flt(func(c *Config) *float64 { return &c.NewSeriesRate })},
		{"WATCHROOM_NEW_SERIES_BURST", "new-series-burst", "1000", "new series ingest may create at once (at least 256, the most metrics one message may carry); raise it to bring a larger fleet online at once", intv(func(c *Config) *int { return &c.NewSeriesBurst })},
		{"WATCHROOM_WS_SEND_QUEUE", "ws-send-queue", "256", "sends queued per WebSocket connection (a batch of readings counts as one) before it is closed as a slow consumer (4008)", intv(func(c *Config) *int { return &c.WSSendQueue })},
		{"WATCHROOM_WS_AUTH_TIMEOUT", "ws-auth-timeout", "5s", "time a new WebSocket connection has to send its auth message", dur(func(c *Config) *time.Duration { return &c.WSAuthTimeout })},
		{"WATCHROOM_WS_PING_INTERVAL", "ws-ping-interval", "30s", "WebSocket ping period; a connection silent for two periods is closed", dur(func(c *Config) *time.Duration { return &c.WSPingInterval })},
		{"WATCHROOM_WS_RATE", "ws-rate", "20", "requests per second allowed per WebSocket connection", flt(func(c *Config) *float64 { return &c.WSRate })},
		{"WATCHROOM_WS_BURST", "ws-burst", "40", "request burst allowed per WebSocket connection", intv(func(c *Config) *int { return &c.WSBurst })},
		{"WATCHROOM_WS_MAX_PER_USER", "ws-max-per-user", "20", "open WebSocket connections allowed per user; more are refused with close code 4029", intv(func(c *Config) *int { return &c.WSMaxPerUser })},
		{"WATCHROOM_WS_MAX_PER_ADDR", "ws-max-per-addr", "200", "open WebSocket connections allowed per client address (behind WATCHROOM_TRUSTED_PROXIES, the forwarded one); more are refused with 4029", intv(func(c *Config) *int { return &c.WSMaxPerAddr })},
		{"WATCHROOM_WS_HIGH_WATER", "ws-high-water", "16384", "readings queued for one WebSocket connection past which its readings are thinned to the latest per series (a gap message names the rest)", intv(func(c *Config) *int { return &c.WSHighWater })},
		{"WATCHROOM_WS_SEND_BUFFER", "ws-send-buffer", "131072", "kernel send buffer per WebSocket connection, in bytes (-1: the kernel's default); a small one lets a slow client's backlog reach the queue, where its readings are thinned, within seconds", intv(func(c *Config) *int { return &c.WSSendBuffer })},
		{"WATCHROOM_WS_WRITE_TIMEOUT", "ws-write-timeout", "5s", "deadline of each WebSocket frame write; a client that stops reading is closed when one is missed", dur(func(c *Config) *time.Duration { return &c.WSWriteTimeout })},
		{"WATCHROOM_RESUME_MAX", "resume-max", "10000", "messages one stream of a resume may replay; more answers resume_failed (too_many) and the client reloads over REST", intv(func(c *Config) *int { return &c.ResumeMax })},
		{"WATCHROOM_RESUME_MAX_AGE", "resume-max-age", "1h", "how far back a resume of readings may reach; older answers resume_failed (too_old)", dur(func(c *Config) *time.Duration { return &c.ResumeMaxAge })},
		{"WATCHROOM_COMMAND_TIMEOUT", "command-timeout", "10s", "time a device has to answer a command", dur(func(c *Config) *time.Duration { return &c.CommandTimeout })},
		{"WATCHROOM_PRESENCE_GRACE", "presence-grace", "10s", "how long a user may be without a connection before their rooms are told they went offline (a reconnect within it sends nothing)", dur(func(c *Config) *time.Duration { return &c.PresenceGrace })},
		{"WATCHROOM_ROOMS_PER_USER", "rooms-per-user", "20", "rooms one user may have created and not deleted; more answers create_room with limit_reached", intv(func(c *Config) *int { return &c.RoomsPerUser })},
		{"WATCHROOM_ROOM_CREATE_RATE", "room-create-rate", "5", "rooms one user may create per minute, after a burst of WATCHROOM_ROOM_CREATE_BURST; more answers rate_limited", flt(func(c *Config) *float64 { return &c.RoomCreateRate })},
		{"WATCHROOM_ROOM_CREATE_BURST", "room-create-burst", "5", "rooms one user may create at once", intv(func(c *Config) *int { return &c.RoomCreateBurst })},
		{"WATCHROOM_RETENTION_RAW", "retention-raw", "30d", "how long raw readings are kept (Nd or a Go duration; 0: forever); older daily partitions are dropped whole", age(func(c *Config) *time.Duration { return &c.RetentionRaw })},
		{"WATCHROOM_MAX_RAW_BYTES", "max-raw-bytes", "0", "size budget of raw readings in bytes (0: none); over it the oldest daily partitions are dropped, never today's", int64v(func(c *Config) *int64 { return &c.MaxRawBytes })},
		{"WATCHROOM_RETENTION_1M", "retention-1m", "365d", "how long 1-minute rollups are kept (0: forever); a monthly partition is dropped whole once its month is older", age(func(c *Config) *time.Duration { return &c.Retention1m })},
		{"WATCHROOM_RETENTION_1H", "retention-1h", "3650d", "how long 1-hour rollups are kept (0: forever); a yearly partition is dropped whole once its year is older", age(func(c *Config) *time.Duration { return &c.Retention1h })},
		{"WATCHROOM_PARTITIONS_AHEAD", "partitions-ahead", "3", "daily readings partitions created ahead of today", intv(func(c *Config) *int { return &c.PartitionsAhead })},
		{"WATCHROOM_DATA_MAINTENANCE_INTERVAL", "data-maintenance-interval", "1h", "how often partitions are created ahead (readings: days, rollups: a month and a year) and retention runs", dur(func(c *Config) *time.Duration { return &c.DataMaintenanceTick })},
		{"WATCHROOM_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"WATCHROOM_LOG_FORMAT", "log-format", "text", "text or json", str(func(c *Config) *string { return &c.LogFormat })},
	}
}

// Parse reads args (without the program and subcommand names) and env
// (as from os.Environ) into a Config. hostname provides the default
// instance id, from which the default client id derives. Errors name the
// offending flag or variable.
func Parse(name string, args, env []string, hostname string, stderr io.Writer) (Config, error) {
	var c Config
	vars := Vars()
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	for _, v := range vars {
		def := v.Default
		switch v.Env {
		case "WATCHROOM_INSTANCE_ID":
			def = DefaultInstanceID(hostname)
		case "WATCHROOM_MQTT_CLIENT_ID":
			def = "" // derived from the instance id once that is final
		}
		if err := v.set(&c, def); err != nil {
			return c, fmt.Errorf("config: default of %s: %w", v.Env, err)
		}
		if e, ok := envMap[v.Env]; ok {
			if err := v.set(&c, e); err != nil {
				return c, fmt.Errorf("config: %s=%q: %w", v.Env, e, err)
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, v := range vars {
		if v.Flag == "" {
			continue
		}
		fs.Func(v.Flag, v.Usage+" (env "+v.Env+")", func(s string) error { return v.set(&c, s) })
	}
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if c.MQTTClientID == "" {
		c.MQTTClientID = ClientIDFor(c.InstanceID)
	}
	return c, c.validate()
}

// fallbackInstanceID is the instance id of a host whose name leaves
// nothing usable.
const fallbackInstanceID = "watchroom"

// DefaultInstanceID derives an instance id from the host name: stable
// across restarts on one host (so the MQTT client id derived from it keeps
// its persistent session), different between hosts.
func DefaultInstanceID(hostname string) string {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	var b strings.Builder
	for _, r := range hostname {
		if idRune(r) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return fallbackInstanceID
	}
	return b.String()
}

// ClientIDFor is the default MQTT client id of instance id:
// "watchroom-<id>", which for the default instance id is the client id
// Watchroom has always derived from the host name.
func ClientIDFor(instanceID string) string {
	if instanceID == fallbackInstanceID {
		return fallbackInstanceID
	}
	return "watchroom-" + instanceID
}

// DefaultClientID is the default MQTT client id on a host: the one derived
// from its default instance id.
func DefaultClientID(hostname string) string {
	return ClientIDFor(DefaultInstanceID(hostname))
}

func idRune(r rune) bool {
	return r < 128 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
}

// maxInstanceID bounds an instance id: it goes into MQTT client ids and
// PostgreSQL application names.
const maxInstanceID = 64

func (c Config) validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		errs = append(errs, fmt.Errorf("batch size %d out of range 1..100000", c.BatchSize))
	}
	if c.IngestQueue < 1 {
		errs = append(errs, fmt.Errorf("ingest queue %d must be positive", c.IngestQueue))
	}
	if c.WSSendQueue < 16 {
		errs = append(errs, fmt.Errorf("ws send queue %d must be at least 16", c.WSSendQueue))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, errors.New("flush interval must not be negative"))
	}
	if c.CommitTimeout <= 0 || c.WSAuthTimeout <= 0 || c.WSPingInterval <= 0 || c.CommandTimeout <= 0 || c.JWTTTL <= 0 || c.PresenceGrace <= 0 ||
		c.WSWriteTimeout <= 0 || c.ResumeMaxAge <= 0 || c.BackplaneHold <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.NewSeriesRate <= 0 {
		errs = append(errs, fmt.Errorf("new series rate %v must be positive", c.NewSeriesRate))
	}
	if c.NewSeriesBurst < minNewSeriesBurst {
		errs = append(errs, fmt.Errorf("new series burst %d must be at least %d (a message may carry that many metrics, and one needs a token each)", c.NewSeriesBurst, minNewSeriesBurst))
	}
	if c.WSHighWater < 1 {
		errs = append(errs, fmt.Errorf("ws high water %d must be positive", c.WSHighWater))
	}
	if c.WSMaxPerUser < 1 || c.WSMaxPerAddr < 1 {
		errs = append(errs, errors.New("ws connection caps must be positive"))
	}
	if c.RetentionRaw < 0 || c.Retention1m < 0 || c.Retention1h < 0 || c.MaxRawBytes < 0 {
		errs = append(errs, errors.New("retentions and max raw bytes must not be negative"))
	}
	if c.PartitionsAhead < 1 || c.DataMaintenanceTick <= 0 {
		errs = append(errs, errors.New("partitions ahead and data maintenance interval must be positive"))
	}
	if c.ResumeMax < 1 {
		errs = append(errs, fmt.Errorf("resume max %d must be positive", c.ResumeMax))
	}
	if c.WSRate <= 0 || c.WSBurst < 1 {
		errs = append(errs, errors.New("ws rate and burst must be positive"))
	}
	if c.RoomsPerUser < 1 || c.RoomCreateRate <= 0 || c.RoomCreateBurst < 1 {
		errs = append(errs, errors.New("rooms per user, room create rate and burst must be positive"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("WATCHROOM_TLS_CERT and WATCHROOM_TLS_KEY go together: set both or neither"))
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("trusted proxy %q: want an IP address or CIDR such as 10.0.0.0/8", p))
		}
	}
	if c.InstanceID == "" || len(c.InstanceID) > maxInstanceID || strings.IndexFunc(c.InstanceID, func(r rune) bool { return !idRune(r) }) >= 0 {
		errs = append(errs, fmt.Errorf("instance id %q: want 1 to %d letters, digits, '-', '_' or '.' (WATCHROOM_INSTANCE_ID)", c.InstanceID, maxInstanceID))
	}
	if strings.ContainsAny(c.MQTTShareGroup, "/+#") {
		errs = append(errs, fmt.Errorf("share group %q must not contain '/', '+' or '#' (WATCHROOM_MQTT_SHARE_GROUP)", c.MQTTShareGroup))
	}
	if c.MQTTShareGroup != "" && c.MQTTURL == "" {
		errs = append(errs, errors.New("WATCHROOM_MQTT_SHARE_GROUP needs WATCHROOM_MQTT_URL: the instances of a group share one external broker, not each its embedded one"))
	}
	for _, t := range c.MQTTTopics {
		if strings.HasPrefix(t, "$share/") && c.MQTTShareGroup != "" {
			errs = append(errs, fmt.Errorf("topic %q is already shared: with WATCHROOM_MQTT_SHARE_GROUP, list plain topics in WATCHROOM_MQTT_TOPICS", t))
		}
	}
	if len(c.MQTTTopics) == 0 {
		errs = append(errs, errors.New("at least one MQTT topic is needed"))
	}
	switch c.Ingest {
	case IngestShared, IngestElected:
	default:
		errs = append(errs, fmt.Errorf("ingest %q: want shared or elected (WATCHROOM_INGEST)", c.Ingest))
	}
	if c.Ingest == IngestElected && c.MQTTShareGroup == "" {
		errs = append(errs, errors.New("WATCHROOM_INGEST=elected needs WATCHROOM_MQTT_SHARE_GROUP, the group of instances that elect one to ingest"))
	}
	switch c.Sensors {
	case SensorsOpen, SensorsRegistered:
	default:
		errs = append(errs, fmt.Errorf("sensors %q: want open or registered", c.Sensors))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log format %q: want text or json", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = strings.TrimSpace(v); return nil }
}

func list(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		*f(c) = out
		return nil
	}
}

func dur(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return err
		}
		*f(c) = d
		return nil
	}
}

func intv(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return err
		}
		*f(c) = n
		return nil
	}
}

// age reads a retention: whole days ("30d") or a Go duration ("12h").
func age(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if n, ok := strings.CutSuffix(v, "d"); ok {
			days, err := strconv.Atoi(n)
			if err != nil {
				return fmt.Errorf("%q: want whole days such as 30d, or a duration such as 12h", v)
			}
			*f(c) = time.Duration(days) * 24 * time.Hour
			return nil
		}
		return dur(f)(c, v)
	}
}

func int64v(f func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return err
		}
		*f(c) = n
		return nil
	}
}

func flt(f func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return err
		}
		*f(c) = n
		return nil
	}
}
