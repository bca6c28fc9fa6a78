package config

import (
	"bufio"
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/watchroom/watchroom/internal/broker"
	"github.com/watchroom/watchroom/internal/pgtest"
	"github.com/watchroom/watchroom/internal/store"
)

// The cluster compose file cannot run here either (no Docker engine). These
// tests keep it consistent with Vars, haproxy/haproxy.cfg, emqx/emqx.conf,
// emqx/acl.conf and the Dockerfile, and run the EMQX authentication and
// authorization queries against a real database with a real device hash.

const (
	clusterComposePath = "../../docker-compose.cluster.yml"
	haproxyCfgPath     = "../../haproxy/haproxy.cfg"
	emqxConfPath       = "../../emqx/emqx.conf"
	emqxACLPath        = "../../emqx/acl.conf"
)

func loadComposeAt(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return f
}

// haproxySection is one frontend, backend, defaults or global section:
// its directives in order, each as its fields.
type haproxySection struct {
	kind, name string
	lines      [][]string
}

func (s haproxySection) get(directive string) [][]string {
	var out [][]string
	for _, l := range s.lines {
		if l[0] == directive {
			out = append(out, l[1:])
		}
	}
	return out
}

func (s haproxySection) has(fields ...string) bool {
	for _, l := range s.lines {
		if slices.Equal(l, fields) {
			return true
		}
	}
	return false
}

func readHAProxyCfg(t *testing.T) []haproxySection {
	t.Helper()
	f, err := os.Open(haproxyCfgPath)
	if err != nil {
		t.Fatalf("open %s: %v", haproxyCfgPath, err)
	}
	defer f.Close()
	var out []haproxySection
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "global", "defaults", "frontend", "backend", "listen":
			s := haproxySection{kind: fields[0]}
			if len(fields) > 1 {
				s.name = fields[1]
			}
			out = append(out, s)
			continue
		}
		if len(out) == 0 {
			t.Fatalf("%s: %q outside a section", haproxyCfgPath, line)
		}
		out[len(out)-1].lines = append(out[len(out)-1].lines, fields)
	}
	return out
}

func haproxyFind(t *testing.T, cfg []haproxySection, kind, name string) haproxySection {
	t.Helper()
	for _, s := range cfg {
		if s.kind == kind && s.name == name {
			return s
		}
	}
	t.Fatalf("%s: no %s %s", haproxyCfgPath, kind, name)
	return haproxySection{}
}

// frontendOf returns the frontend binding port and the backend it uses.
func frontendOf(t *testing.T, cfg []haproxySection, port string) (haproxySection, haproxySection) {
	t.Helper()
	for _, s := range cfg {
		if s.kind != "frontend" {
			continue
		}
		for _, b := range s.get("bind") {
			if _, p, err := net.SplitHostPort(b[0]); err == nil && p == port {
				be := s.get("default_backend")
				if len(be) != 1 {
					t.Fatalf("frontend %s: want one default_backend", s.name)
				}
				return s, haproxyFind(t, cfg, "backend", be[0][0])
			}
		}
	}
	t.Fatalf("%s: no frontend binds port %s", haproxyCfgPath, port)
	return haproxySection{}, haproxySection{}
}

// modeOf is a section's mode, else the defaults'.
func modeOf(cfg []haproxySection, s haproxySection) string {
	if m := s.get("mode"); len(m) > 0 {
		return m[0][0]
	}
	for _, d := range cfg {
		if d.kind == "defaults" {
			if m := d.get("mode"); len(m) > 0 {
				return m[0][0]
			}
		}
	}
	return "tcp"
}

// servers returns the backend's servers as host:port.
func servers(s haproxySection) []string {
	var out []string
	for _, l := range s.get("server") {
		if len(l) >= 2 {
			out = append(out, l[1])
		}
	}
	return out
}

// hoconValues returns every value of a `key = value` line of emqx.conf
// whose key (last path element) is key, quotes removed.
func hoconValues(text, key string) []string {
	re := regexp.MustCompile(`(?m)^\s*(?:[\w.]+\.)?` + regexp.QuoteMeta(key) + `\s*=\s*(.+?)\s*$`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		v := m[1]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		out = append(out, v)
	}
	return out
}

func mounts(s composeService, target string) string {
	for _, m := range s.Volumes {
		if m.Target == target {
			return filepath.Clean(m.Source)
		}
	}
	return ""
}

func TestClusterComposeFile(t *testing.T) {
	f := loadComposeAt(t, clusterComposePath)
	cfg := readHAProxyCfg(t)
	emqxConf, err := os.ReadFile(emqxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Env] = true
	}
	for _, name := range []string{"postgres", "haproxy", "emqx1", "emqx2", "emqx-auth", "simulator"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("%s: service %q missing", clusterComposePath, name)
		}
	}
	var instances []string
	for name, s := range f.Services {
		if name != "simulator" && s.Build.Context != "" {
			instances = append(instances, name)
		}
	}
	slices.Sort(instances)
	if len(instances) != 3 {
		t.Fatalf("Watchroom instances (services built from the Dockerfile, simulator aside): %v, want 3", instances)
	}
	pg, hap, sim := f.Services["postgres"], f.Services["haproxy"], f.Services["simulator"]
	_, httpPort, _ := net.SplitHostPort(varDefault(t, "WATCHROOM_HTTP_ADDR"))

	t.Run("compose spec, known settings", func(t *testing.T) {
		if f.Version != nil {
			t.Error("top-level version is obsolete in the Compose specification")
		}
		for name, s := range f.Services {
			for k := range s.Environment {
				if strings.HasPrefix(k, "WATCHROOM_") && !known[k] {
					t.Errorf("service %s sets %s, which config.Vars() does not know", name, k)
				}
			}
			for dep, cond := range s.DependsOn {
				d, ok := f.Services[dep]
				if !ok {
					t.Errorf("service %s depends on unknown service %s", name, dep)
				} else if cond == "service_healthy" && (d.Healthcheck == nil || d.Healthcheck.Disable) {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			}
		}
	})

	t.Run("instances: distinct ids, one share group, one secret source, one database", func(t *testing.T) {
		ids, clients := map[string]string{}, map[string]string{}
		same := map[string]map[string]bool{}
		for _, name := range instances {
			s := f.Services[name]
			id, _ := s.env(t, "WATCHROOM_INSTANCE_ID")
			if id == "" {
				t.Errorf("%s: WATCHROOM_INSTANCE_ID unset (the container's host name changes when it is recreated)", name)
			}
			if other, dup := ids[id]; dup {
				t.Errorf("%s and %s share WATCHROOM_INSTANCE_ID %q: the second refuses to start", other, name, id)
			}
			ids[id] = name
			client, _ := s.env(t, "WATCHROOM_MQTT_CLIENT_ID")
			if client == "" {
				client = "watchroom-" + id
			}
			if other, dup := clients[client]; dup {
				t.Errorf("%s and %s share the MQTT client id %q: they throw each other off the broker", other, name, client)
			}
			clients[client] = name
			for _, k := range []string{"WATCHROOM_MQTT_SHARE_GROUP", "WATCHROOM_JWT_SECRET", "WATCHROOM_DATABASE_URL", "WATCHROOM_MQTT_URL", "WATCHROOM_ALLOWED_ORIGINS"} {
				if same[k] == nil {
					same[k] = map[string]bool{}
				}
				same[k][s.Environment[k]] = true // as written: one source
			}
			if len(s.Ports) > 0 {
				t.Errorf("%s publishes %v: the way in is haproxy", name, s.Ports)
			}
			if filepath.Clean(s.Build.Context) != "." || (s.Build.Dockerfile != "" && s.Build.Dockerfile != "Dockerfile") {
				t.Errorf("%s build %+v, want the repository's Dockerfile", name, s.Build)
			}
			if h := s.Healthcheck; h == nil || !slices.Contains(h.Test, "healthcheck") {
				t.Errorf("%s: want the binary's healthcheck subcommand as healthcheck", name)
			}
			for _, dep := range []string{"postgres", "emqx1", "emqx2"} {
				if c := s.DependsOn[dep]; c != "service_healthy" {
					t.Errorf("%s depends_on %s: %q, want service_healthy", name, dep, c)
				}
			}
		}
		for k, vals := range same {
			if len(vals) != 1 {
				t.Errorf("%s differs between instances: %v", k, slices.Collect(mapKeys(vals)))
			}
		}
		if g, _ := f.Services[instances[0]].env(t, "WATCHROOM_MQTT_SHARE_GROUP"); g == "" {
			t.Error("WATCHROOM_MQTT_SHARE_GROUP empty: every instance would ingest every reading and there would be no backplane")
		}
		raw, _ := f.Services[instances[0]].env(t, "WATCHROOM_DATABASE_URL")
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if db, ok := f.Services[u.Hostname()]; !ok || !strings.HasPrefix(db.Image, "postgres:") {
			t.Errorf("WATCHROOM_DATABASE_URL host %q is not the postgres service", u.Hostname())
		}
		pass, _ := u.User.Password()
		for k, want := range map[string]string{"POSTGRES_USER": u.User.Username(), "POSTGRES_PASSWORD": pass, "POSTGRES_DB": strings.TrimPrefix(u.Path, "/")} {
			if v, _ := pg.env(t, k); v != want {
				t.Errorf("postgres %s = %q, but the URL has %q", k, v, want)
			}
		}
	})

	t.Run("haproxy balances HTTP and /ws over the instances", func(t *testing.T) {
		if got := mounts(hap, "/usr/local/etc/haproxy/haproxy.cfg"); got != "haproxy/haproxy.cfg" {
			t.Errorf("haproxy mounts %q at /usr/local/etc/haproxy/haproxy.cfg, want haproxy/haproxy.cfg", got)
		}
		var published []string
		for _, p := range hap.Ports {
			published = append(published, p.Target)
		}
		fe, be := frontendOf(t, cfg, httpPort)
		if !slices.Contains(published, httpPort) {
			t.Errorf("haproxy ports %v do not publish the HTTP frontend's %s", published, httpPort)
		}
		if modeOf(cfg, fe) != "http" || modeOf(cfg, be) != "http" {
			t.Errorf("HTTP frontend/backend not in mode http: WebSocket upgrades need it")
		}
		var want []string
		for _, name := range instances {
			want = append(want, name+":"+httpPort)
		}
		got := servers(be)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("backend %s servers %v, want the instances %v", be.name, got, want)
		}
		if !be.has("option", "httpchk", "GET", "/readyz") || !be.has("http-check", "expect", "status", "200") {
			t.Errorf("backend %s: want `option httpchk GET /readyz` and `http-check expect status 200`", be.name)
		}
		checked := slices.ContainsFunc(be.get("default-server"), func(l []string) bool { return slices.Contains(l, "check") })
		for _, l := range be.get("server") {
			if !checked && !slices.Contains(l, "check") {
				t.Errorf("server %v is not health-checked", l)
			}
		}
		ping, err := time.ParseDuration(varDefault(t, "WATCHROOM_WS_PING_INTERVAL"))
		if err != nil {
			t.Fatal(err)
		}
		var tunnel time.Duration
		for _, s := range cfg {
			if s.kind == "defaults" || (s.kind == be.kind && s.name == be.name) {
				for _, l := range s.get("timeout") {
					if len(l) == 2 && l[0] == "tunnel" {
						tunnel, err = time.ParseDuration(l[1])
						if err != nil {
							t.Fatalf("timeout tunnel %s: %v", l[1], err)
						}
					}
				}
			}
		}
		if tunnel <= 2*ping {
			t.Errorf("timeout tunnel %v: want well above the ping interval %v, or idle /ws connections are cut", tunnel, ping)
		}
	})

	t.Run("MQTT goes through haproxy to the EMQX nodes", func(t *testing.T) {
		listeners := hoconValues(string(emqxConf), "bind")
		var mqttPort string
		for _, b := range listeners {
			if _, p, err := net.SplitHostPort(b); err == nil && p != "18083" {
				mqttPort = p
			}
		}
		if mqttPort == "" {
			t.Fatalf("%s: no MQTT listener bind", emqxConfPath)
		}
		fe, be := frontendOf(t, cfg, mqttPort)
		if modeOf(cfg, fe) != "tcp" || modeOf(cfg, be) != "tcp" {
			t.Error("MQTT frontend/backend must be mode tcp")
		}
		got := servers(be)
		slices.Sort(got)
		if want := []string{"emqx1:" + mqttPort, "emqx2:" + mqttPort}; !slices.Equal(got, want) {
			t.Errorf("backend %s servers %v, want %v", be.name, got, want)
		}
		urls := map[string]string{}
		for _, name := range instances {
			urls[name], _ = f.Services[name].env(t, "WATCHROOM_MQTT_URL")
		}
		if i := slices.Index(sim.Command, "--mqtt-url"); i >= 0 && i+1 < len(sim.Command) {
			v, err := interpolate(sim.Command[i+1])
			if err != nil {
				t.Fatal(err)
			}
			urls["simulator"] = v
		} else {
			t.Errorf("simulator command %v has no --mqtt-url", sim.Command)
		}
		for name, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil || u.Hostname() != "haproxy" || u.Port() != mqttPort {
				t.Errorf("%s MQTT URL %q: want haproxy:%s", name, raw, mqttPort)
			}
		}
		if !slices.ContainsFunc(hap.Ports, func(m composeMount) bool { return m.Target == mqttPort }) {
			t.Errorf("haproxy does not publish MQTT port %s for the sensors", mqttPort)
		}
	})

	t.Run("two EMQX nodes in one static cluster", func(t *testing.T) {
		var names []string
		cookies := map[string]bool{}
		for _, svc := range []string{"emqx1", "emqx2"} {
			s := f.Services[svc]
			if !strings.HasPrefix(s.Image, "emqx/emqx:5.") {
				t.Errorf("%s image %q, want emqx/emqx:5.x", svc, s.Image)
			}
			if mounts(s, "/opt/emqx/etc/emqx.conf") != "emqx/emqx.conf" || mounts(s, "/opt/emqx/etc/acl.conf") != "emqx/acl.conf" {
				t.Errorf("%s volumes %v: want emqx/emqx.conf and emqx/acl.conf mounted in /opt/emqx/etc", svc, s.Volumes)
			}
			if src := mounts(s, "/opt/emqx/data"); src == "" || f.Volumes[src] == nil && !hasKey(f.Volumes, src) {
				t.Errorf("%s: /opt/emqx/data not on a declared volume", svc)
			}
			node, _ := s.env(t, "EMQX_NODE_NAME")
			_, host, ok := strings.Cut(node, "@")
			if !ok || !strings.HasPrefix(host, svc+".") {
				t.Errorf("%s: EMQX_NODE_NAME %q, want emqx@%s.<domain>", svc, node, svc)
			}
			names = append(names, node)
			c, _ := s.env(t, "EMQX_NODE__COOKIE")
			cookies[c] = true
			if d, _ := s.env(t, "EMQX_CLUSTER__DISCOVERY_STRATEGY"); d != "static" {
				t.Errorf("%s: discovery %q, want static", svc, d)
			}
			if h := s.Healthcheck; h == nil || h.Disable {
				t.Errorf("%s needs a healthcheck", svc)
			}
		}
		for _, svc := range []string{"emqx1", "emqx2"} {
			seeds, _ := f.Services[svc].env(t, "EMQX_CLUSTER__STATIC__SEEDS")
			got := strings.Split(strings.Trim(seeds, "[]"), ",")
			slices.Sort(got)
			if !slices.Equal(got, names) {
				t.Errorf("%s seeds %v, want %v", svc, got, names)
			}
		}
		if len(cookies) != 1 {
			t.Errorf("the nodes' cookies differ: they cannot cluster")
		}
	})

	t.Run("EMQX keeps devices to their topics, with Mosquitto's limits", func(t *testing.T) {
		text := string(emqxConf)
		for _, lim := range []struct {
			key string
			min int
		}{{"max_inflight", minInflight}, {"max_mqueue_len", minQueued}} {
			v := hoconValues(text, lim.key)
			if n, err := strconv.Atoi(strings.Join(v, "")); len(v) != 1 || err != nil || n < lim.min {
				t.Errorf("%s: %s %v, want at least %d", emqxConfPath, lim.key, v, lim.min)
			}
		}
		if v := hoconValues(text, "no_match"); !slices.Equal(v, []string{"deny"}) {
			t.Errorf("authorization no_match %v, want deny", v)
		}
		for _, k := range []string{"server", "database", "username", "password"} {
			v := hoconValues(text, k)
			want := map[string]string{"server": "postgres:5432"}[k]
			if want == "" {
				want, _ = pg.env(t, map[string]string{"database": "POSTGRES_DB", "username": "POSTGRES_USER", "password": "POSTGRES_PASSWORD"}[k])
			}
			if len(v) < 2 || slices.IndexFunc(v, func(s string) bool { return s != want }) >= 0 {
				t.Errorf("%s: %s %v, want %q in both PostgreSQL sources", emqxConfPath, k, v, want)
			}
		}
		acl, err := os.ReadFile(emqxACLPath)
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, l := range strings.Split(string(acl), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "%") {
				rules = append(rules, l)
			}
		}
		if len(rules) == 0 || rules[len(rules)-1] != "{deny, all}." {
			t.Errorf("%s: last rule %q, want {deny, all}. (the image's default allows everything)", emqxACLPath, rules)
		}
		boot := hoconValues(text, "bootstrap_file")
		auth := f.Services["emqx-auth"]
		if len(boot) != 1 || !strings.HasPrefix(boot[0], "/opt/emqx/etc/auth/") || mounts(f.Services["emqx1"], "/opt/emqx/etc/auth") != mounts(auth, "/auth") ||
			!strings.Contains(strings.Join(auth.Command, " "), "/auth/"+filepath.Base(boot[0])) {
			t.Errorf("bootstrap_file %v is not the file emqx-auth writes to the volume both share", boot)
		}
		if !strings.Contains(strings.Join(auth.Command, " "), "watchroom,%s,true") {
			t.Error("emqx-auth: Watchroom's user must be a superuser (it reads sensors/#, writes commands, uses the backplane)")
		}
	})
}

// haproxy itself accepts the configuration (`haproxy -c`), with the
// compose services' host names, which do not resolve here, replaced by
// the loopback address.
func TestHAProxyConfigIsValid(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy not found (%v): install Debian's haproxy (make services does)", err)
		}
		bin = "/usr/sbin/haproxy"
	}
	b, err := os.ReadFile(haproxyCfgPath)
	if err != nil {
		t.Fatal(err)
	}
	local := regexp.MustCompile(`(?m)^(\s*server\s+\S+\s+)[^:\s]+:`).ReplaceAllString(string(b), "${1}127.0.0.1:")
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c %s: %v\n%s", haproxyCfgPath, err, out)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The EMQX queries of emqx/emqx.conf, run against the real schema: a
// device added as `watchroom device add` does authenticates with its
// secret under EMQX's PBKDF2 check (hex key, salt as bytes), a revoked one
// or one using a client id of Watchroom's sessions is not found, and a
// device may publish and subscribe to its own topics only.
func TestEMQXQueriesAgainstTheDevicesTable(t *testing.T) {
	text, err := os.ReadFile(emqxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	queries := hoconValues(string(text), "query")
	if len(queries) != 2 {
		t.Fatalf("%s: %d queries, want the authentication and the authorization one", emqxConfPath, len(queries))
	}
	iters := hoconValues(string(text), "iterations")
	if len(iters) != 1 {
		t.Fatalf("iterations %v", iters)
	}
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := store.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const secret = "device-secret-1"
	hash, err := broker.HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$7$"+iters[0]+"$") {
		t.Fatalf("HashSecret gives %q, but EMQX is configured for %s iterations", hash[:8], iters[0])
	}
	for _, d := range []struct {
		id      string
		revoked bool
	}{{"boiler-1", false}, {"old-1", true}} {
		if _, err := conn.Exec(ctx, `INSERT INTO devices (id, secret_hash, created_by, revoked_at) VALUES ($1, $2, 'test', CASE WHEN $3 THEN now() END)`, d.id, hash, d.revoked); err != nil {
			t.Fatal(err)
		}
	}
	// EMQX sends ${username} as a parameter of a prepared statement.
	authn := strings.NewReplacer("${username}", "$1", "${clientid}", "$2").Replace(queries[0])
	authz := strings.ReplaceAll(queries[1], "${username}", "$1")

	var hexKey string
	var salt []byte
	if err := conn.QueryRow(ctx, authn, "boiler-1", "boiler-1").Scan(&hexKey, &salt, new(bool)); err != nil {
		t.Fatalf("authentication query: %v", err)
	}
	for pass, want := range map[string]bool{secret: true, "wrong": false} {
		key, err := pbkdf2.Key(sha512.New, pass, salt, 101, sha512.Size)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(key) == hexKey; got != want {
			t.Errorf("password %q: EMQX's check would say %v, want %v", pass, got, want)
		}
	}
	if err := conn.QueryRow(ctx, authn, "old-1", "old-1").Scan(&hexKey, &salt, new(bool)); err != pgx.ErrNoRows {
		t.Errorf("revoked device: %v, want no row", err)
	}
	if err := conn.QueryRow(ctx, authn, "boiler-1", "watchroom-web-1").Scan(&hexKey, &salt, new(bool)); err != pgx.ErrNoRows {
		t.Errorf("a device with a client id of Watchroom's sessions: %v, want no row", err)
	}

	rows, err := conn.Query(ctx, authz, "boiler-1")
	if err != nil {
		t.Fatalf("authorization query: %v", err)
	}
	var got []string
	for rows.Next() {
		var perm, action, topic string
		if err := rows.Scan(&perm, &action, &topic); err != nil {
			t.Fatal(err)
		}
		got = append(got, perm+" "+action+" "+topic)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	slices.Sort(got)
	want := []string{
		"allow publish devices/boiler-1/responses",
		"allow publish sensors/boiler-1",
		"allow publish sensors/boiler-1/#",
		"allow subscribe devices/boiler-1/commands",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules of boiler-1:\n got %v\nwant %v", got, want)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ("+authz+") r", "old-1").Scan(&n); err != nil || n != 0 {
		t.Errorf("revoked device: %d rules (%v), want none", n, err)
	}
}
