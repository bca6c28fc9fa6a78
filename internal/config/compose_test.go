package config

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No Docker engine runs on the development machines, so docker-compose.yml,
// the Dockerfile and mosquitto/mosquitto.conf cannot be tried there. These
// tests keep them consistent with each other and with Vars, which is also
// the source of the README's configuration table.

const (
	composePath   = "../../docker-compose.yml"
	dockerfile    = "../../Dockerfile"
	mosquittoConf = "../../mosquitto/mosquitto.conf"
	goModPath     = "../../go.mod"
	readmePath    = "../../README.md"

	// The limits measured to carry QoS 1 at load without loss (see
	// mosquitto/mosquitto.conf); Mosquitto's defaults are 20 and 1000.
	minInflight = 1000
	minQueued   = 100000
)

type composeFile struct {
	Version  *string                   `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       composeBuild   `yaml:"build"`
	Command     stringOrList   `yaml:"command"`
	Environment composeEnv     `yaml:"environment"`
	Ports       []composeMount `yaml:"ports"`
	Volumes     []composeMount `yaml:"volumes"`
	DependsOn   composeDepends `yaml:"depends_on"`
	Healthcheck *composeHealth `yaml:"healthcheck"`
}

type composeHealth struct {
	Test    stringOrList `yaml:"test"`
	Disable bool         `yaml:"disable"`
}

// composeBuild is the context of `build:`, given as a string or as a map
// with `context`.
type composeBuild struct{ Context, Dockerfile string }

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var m struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	b.Context, b.Dockerfile = m.Context, m.Dockerfile
	return nil
}

// stringOrList holds `command:` or a healthcheck's `test:`, which compose
// accepts as one string or as a list.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// composeEnv holds `environment:` in either of its forms (map or KEY=VALUE
// list), values as written (not yet interpolated).
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]*string
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v == nil {
				(*e)[k] = ""
			} else {
				(*e)[k] = *v
			}
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
	default:
		return fmt.Errorf("environment: want a map or a list, line %d", n.Line)
	}
	return nil
}

// composeMount is one entry of `ports:` or `volumes:` in short
// ("source:target[:mode]") or long (source/target or published/target) form.
type composeMount struct{ Source, Target string }

func (m *composeMount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		switch {
		case len(parts) == 1:
			m.Target = parts[0]
		case len(parts) == 2:
			m.Source, m.Target = parts[0], parts[1]
		default:
			// host_ip:published:target for ports, source:target:mode for
			// volumes: the target is the one that is a path or a number.
			if strings.HasPrefix(parts[1], "/") {
				m.Source, m.Target = parts[0], parts[1]
			} else {
				m.Source, m.Target = parts[len(parts)-2], parts[len(parts)-1]
			}
		}
		m.Target = strings.TrimSuffix(m.Target, "/tcp")
		return nil
	}
	var l struct {
		Source    string `yaml:"source"`
		Published string `yaml:"published"`
		Target    string `yaml:"target"`
	}
	if err := n.Decode(&l); err != nil {
		return err
	}
	m.Source, m.Target = l.Source, l.Target
	if l.Published != "" {
		m.Source = l.Published
	}
	return nil
}

// composeDepends maps each dependency to its condition; the short list form
// means service_started.
type composeDepends map[string]string

func (d *composeDepends) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDepends{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		(*d)[k] = v.Condition
	}
	return nil
}

func loadCompose(t *testing.T) composeFile { return loadComposeAt(t, composePath) }

// interpolate resolves compose's variable syntax as if no variable were set
// in the shell: ${X:-default} and ${X-default} give the default, ${X} and $X
// give "", and $$ is a literal $.
func interpolate(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
		case i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %q", s)
			}
			expr := s[i+2 : i+end]
			if _, def, ok := strings.Cut(expr, ":-"); ok {
				b.WriteString(def)
			} else if _, def, ok := strings.Cut(expr, "-"); ok {
				b.WriteString(def)
			} else if strings.ContainsAny(expr, ":?+") {
				return "", fmt.Errorf("unsupported interpolation ${%s}", expr)
			}
			i += end
		default:
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			i = j - 1
		}
	}
	return b.String(), nil
}

// env returns a service's variable with compose's interpolation applied.
func (s composeService) env(t *testing.T, name string) (string, bool) {
	t.Helper()
	raw, ok := s.Environment[name]
	if !ok {
		return "", false
	}
	v, err := interpolate(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v, true
}

// readMosquittoConf returns each directive's argument lists in file order.
// Mosquitto only treats lines starting with # as comments.
func readMosquittoConf(t *testing.T) map[string][][]string {
	t.Helper()
	f, err := os.Open(mosquittoConf)
	if err != nil {
		t.Fatalf("open %s: %v", mosquittoConf, err)
	}
	defer f.Close()
	conf := map[string][][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		conf[fields[0]] = append(conf[fields[0]], fields[1:])
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", mosquittoConf, err)
	}
	return conf
}

func varDefault(t *testing.T, env string) string {
	t.Helper()
	for _, v := range Vars() {
		if v.Env == env {
			return v.Default
		}
	}
	t.Fatalf("%s is not in Vars()", env)
	return ""
}

func TestComposeFile(t *testing.T) {
	f := loadCompose(t)
	conf := readMosquittoConf(t)
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Env] = true
	}

	// The services the checks below look at; a missing one fails them all.
	for _, name := range []string{"postgres", "mosquitto", "watchroom", "simulator"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("%s: service %q missing", composePath, name)
		}
	}
	pg, mq, wr, sim := f.Services["postgres"], f.Services["mosquitto"], f.Services["watchroom"], f.Services["simulator"]

	var listenerPorts []string
	for _, args := range conf["listener"] {
		if len(args) > 0 {
			listenerPorts = append(listenerPorts, args[0])
		}
	}

	t.Run("compose spec without version key", func(t *testing.T) {
		if f.Version != nil {
			t.Errorf("top-level version: %q is obsolete in the Compose specification; remove it", *f.Version)
		}
	})

	t.Run("every WATCHROOM_ variable is a known setting", func(t *testing.T) {
		for name, s := range f.Services {
			for k := range s.Environment {
				if strings.HasPrefix(k, "WATCHROOM_") && !known[k] {
					t.Errorf("service %s sets %s, which config.Vars() does not know", name, k)
				}
			}
		}
	})

	t.Run("watchroom publishes its HTTP port", func(t *testing.T) {
		addr := varDefault(t, "WATCHROOM_HTTP_ADDR")
		if v, ok := wr.env(t, "WATCHROOM_HTTP_ADDR"); ok {
			addr = v
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("WATCHROOM_HTTP_ADDR %q: %v", addr, err)
		}
		if !publishes(wr, port) {
			t.Errorf("watchroom ports %v: none targets the HTTP port %s", wr.Ports, port)
		}
	})

	t.Run("mosquitto publishes its listener", func(t *testing.T) {
		if len(listenerPorts) == 0 {
			t.Fatalf("%s has no listener line", mosquittoConf)
		}
		if !publishes(mq, listenerPorts[0]) {
			t.Errorf("mosquitto ports %v: none targets listener %s", mq.Ports, listenerPorts[0])
		}
	})

	t.Run("healthchecks", func(t *testing.T) {
		for _, name := range []string{"postgres", "mosquitto", "watchroom"} {
			if h := f.Services[name].Healthcheck; h == nil || h.Disable || len(h.Test) == 0 {
				t.Errorf("service %s needs a healthcheck", name)
			}
		}
		if h := wr.Healthcheck; h != nil && !slices.Contains(h.Test, "healthcheck") {
			t.Errorf("watchroom healthcheck %v: want the binary's `healthcheck` subcommand (distroless has no shell or curl)", h.Test)
		}
		if h := mq.Healthcheck; h != nil {
			for _, arg := range h.Test {
				if strings.Contains(arg, "$") && !strings.Contains(arg, "$$") {
					t.Errorf("mosquitto healthcheck argument %q: write $ as $$ or compose interpolates it", arg)
				}
			}
		}
		for name, s := range f.Services {
			for dep, cond := range s.DependsOn {
				d, ok := f.Services[dep]
				if !ok {
					t.Errorf("service %s depends on unknown service %s", name, dep)
					continue
				}
				if cond == "service_healthy" && (d.Healthcheck == nil || d.Healthcheck.Disable) {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			}
		}
	})

	t.Run("watchroom waits for its dependencies", func(t *testing.T) {
		for _, dep := range []string{"postgres", "mosquitto"} {
			if c := wr.DependsOn[dep]; c != "service_healthy" {
				t.Errorf("watchroom depends_on %s: condition %q, want service_healthy", dep, c)
			}
		}
		if c := sim.DependsOn["mosquitto"]; c != "service_healthy" {
			t.Errorf("simulator depends_on mosquitto: condition %q, want service_healthy", c)
		}
	})

	t.Run("database URL points at the postgres service", func(t *testing.T) {
		raw, ok := wr.env(t, "WATCHROOM_DATABASE_URL")
		if !ok {
			t.Fatal("watchroom: WATCHROOM_DATABASE_URL not set (serve requires it)")
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("WATCHROOM_DATABASE_URL: %v", err)
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			t.Errorf("scheme %q, want postgres", u.Scheme)
		}
		db, ok := f.Services[u.Hostname()]
		if !ok || !strings.HasPrefix(db.Image, "postgres:") {
			t.Errorf("host %q is not a postgres service of the compose file", u.Hostname())
		}
		if p := u.Port(); p != "" && p != "5432" {
			t.Errorf("port %s, want PostgreSQL's 5432 inside the compose network", p)
		}
		pass, _ := u.User.Password()
		want := map[string]string{"POSTGRES_USER": u.User.Username(), "POSTGRES_PASSWORD": pass, "POSTGRES_DB": strings.TrimPrefix(u.Path, "/")}
		for k, got := range want {
			if v, _ := pg.env(t, k); v != got {
				t.Errorf("postgres %s = %q, but the URL has %q", k, v, got)
			}
		}
	})

	t.Run("MQTT URLs point at the mosquitto listener", func(t *testing.T) {
		urls := map[string]string{}
		if v, ok := wr.env(t, "WATCHROOM_MQTT_URL"); ok && v != "" {
			urls["watchroom WATCHROOM_MQTT_URL"] = v
		} else {
			t.Error("watchroom: WATCHROOM_MQTT_URL empty, so it would start its embedded broker instead of using mosquitto")
		}
		if i := slices.Index(sim.Command, "--mqtt-url"); i >= 0 && i+1 < len(sim.Command) {
			// compose interpolates command too (the gateway password).
			v, err := interpolate(sim.Command[i+1])
			if err != nil {
				t.Fatalf("simulator --mqtt-url: %v", err)
			}
			urls["simulator --mqtt-url"] = v
		} else {
			t.Errorf("simulator command %v has no --mqtt-url", sim.Command)
		}
		for what, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			if s, ok := f.Services[u.Hostname()]; !ok || !strings.HasPrefix(s.Image, "eclipse-mosquitto:") {
				t.Errorf("%s %q: host is not the mosquitto service", what, raw)
			}
			if !slices.Contains(listenerPorts, u.Port()) {
				t.Errorf("%s %q: port is not a listener of %s (%v)", what, raw, mosquittoConf, listenerPorts)
			}
		}
	})

	t.Run("simulator and watchroom run the built image", func(t *testing.T) {
		for _, name := range []string{"watchroom", "simulator"} {
			s := f.Services[name]
			if filepath.Clean(s.Build.Context) != "." || (s.Build.Dockerfile != "" && s.Build.Dockerfile != "Dockerfile") {
				t.Errorf("service %s build %+v, want the repository's Dockerfile", name, s.Build)
			}
		}
		if len(sim.Command) == 0 || sim.Command[0] != "simulate" {
			t.Errorf("simulator command %v, want the simulate subcommand", sim.Command)
		}
		// The image's HEALTHCHECK probes the HTTP server, which the
		// simulator does not run.
		if sim.Healthcheck == nil || !sim.Healthcheck.Disable {
			t.Error("simulator must disable the image's healthcheck (it serves no HTTP)")
		}
	})

	t.Run("mosquitto uses mosquitto.conf with persistence", func(t *testing.T) {
		var confMounted bool
		for _, m := range mq.Volumes {
			if m.Target == "/mosquitto/config/mosquitto.conf" {
				confMounted = filepath.Clean(m.Source) == "mosquitto/mosquitto.conf"
			}
		}
		if !confMounted {
			t.Errorf("mosquitto volumes %v: want ./mosquitto/mosquitto.conf mounted at /mosquitto/config/mosquitto.conf", mq.Volumes)
		}
		if got := conf["persistence"]; len(got) != 1 || len(got[0]) != 1 || got[0][0] != "true" {
			t.Errorf("%s: persistence %v, want true", mosquittoConf, got)
		}
		loc := conf["persistence_location"]
		if len(loc) != 1 || len(loc[0]) != 1 {
			t.Fatalf("%s: persistence_location %v, want one path", mosquittoConf, loc)
		}
		var onVolume bool
		for _, m := range mq.Volumes {
			if strings.TrimSuffix(m.Target, "/") == strings.TrimSuffix(loc[0][0], "/") {
				onVolume = true
				if _, declared := f.Volumes[m.Source]; !declared {
					t.Errorf("mosquitto data volume %q is not a declared named volume", m.Source)
				}
			}
		}
		if !onVolume {
			t.Errorf("persistence_location %s is not on a volume of the mosquitto service, so restarts lose sessions", loc[0][0])
		}
		for _, lim := range []struct {
			name string
			min  int
		}{{"max_inflight_messages", minInflight}, {"max_queued_messages", minQueued}} {
			v := conf[lim.name]
			if len(v) != 1 || len(v[0]) != 1 {
				t.Errorf("%s: %s %v, want it set once (the default drops QoS 1 messages under load)", mosquittoConf, lim.name, v)
				continue
			}
			if n, err := strconv.Atoi(v[0][0]); err != nil || n < lim.min {
				t.Errorf("%s: %s %s, want at least %d", mosquittoConf, lim.name, v[0][0], lim.min)
			}
		}
	})

	t.Run("postgres keeps its data on a volume", func(t *testing.T) {
		var ok bool
		for _, m := range pg.Volumes {
			if m.Target == "/var/lib/postgresql/data" {
				_, ok = f.Volumes[m.Source]
			}
		}
		if !ok {
			t.Errorf("postgres volumes %v: want a declared named volume at /var/lib/postgresql/data", pg.Volumes)
		}
	})
}

// publishes reports whether s publishes container port port.
func publishes(s composeService, port string) bool {
	for _, p := range s.Ports {
		if p.Target == port {
			return true
		}
	}
	return false
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatalf("read %s: %v", dockerfile, err)
	}
	text := string(b)
	// Backslash continuations joined, so a RUN split over lines reads whole.
	joined := strings.ReplaceAll(text, "\\\n", " ")

	t.Run("builds cmd/watchroom statically", func(t *testing.T) {
		re := regexp.MustCompile(`(?m)^RUN .*go build .*\./cmd/watchroom\b`)
		if !re.MatchString(joined) {
			t.Error("no RUN ... go build ... ./cmd/watchroom")
		}
		if !strings.Contains(joined, "CGO_ENABLED=0") {
			t.Error("CGO_ENABLED=0 missing: the distroless static base has no libc")
		}
	})

	t.Run("entrypoint, command, ports, healthcheck", func(t *testing.T) {
		for _, want := range []string{
			`ENTRYPOINT ["/watchroom"]`,
			`CMD ["serve"]`,
			`"/watchroom", "healthcheck"`,
		} {
			if !strings.Contains(joined, want) {
				t.Errorf("missing %s", want)
			}
		}
		_, httpPort, _ := net.SplitHostPort(varDefault(t, "WATCHROOM_HTTP_ADDR"))
		_, mqttPort, _ := net.SplitHostPort(varDefault(t, "WATCHROOM_MQTT_LISTEN"))
		re := regexp.MustCompile(`(?m)^EXPOSE (.*)$`)
		var exposed []string
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			exposed = append(exposed, strings.Fields(m[1])...)
		}
		for _, p := range []string{httpPort, mqttPort} {
			if !slices.Contains(exposed, p) {
				t.Errorf("EXPOSE %v lacks %s", exposed, p)
			}
		}
	})

	t.Run("Go version matches go.mod", func(t *testing.T) {
		mod, err := os.ReadFile(goModPath)
		if err != nil {
			t.Fatalf("read %s: %v", goModPath, err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
		if m == nil {
			t.Fatalf("%s: no go directive", goModPath)
		}
		want := string(m[1])
		from := regexp.MustCompile(`(?m)^FROM golang:(\S+)`).FindStringSubmatch(text)
		if from == nil {
			t.Fatal("no FROM golang:... build stage")
		}
		tag := from[1]
		if arg := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(text); arg != nil {
			tag = strings.ReplaceAll(tag, "${GO_VERSION}", arg[1])
		}
		if tag != want && !strings.HasPrefix(tag, want+"-") && !strings.HasPrefix(tag, want+".") {
			t.Errorf("build image golang:%s, but go.mod says go %s", tag, want)
		}
	})
}

func TestDockerignoreKeepsEmbeddedAssets(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf("read .dockerignore: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		p := strings.TrimPrefix(strings.TrimSpace(line), "/")
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		for _, needed := range []string{"frontend/dist", "migrations", "cmd", "internal", "go.mod", "go.sum"} {
			if p == needed || p == "*" || strings.HasPrefix(needed, p+"/") {
				t.Errorf(".dockerignore %q excludes %s, which the Go build embeds or compiles", line, needed)
			}
		}
	}
}

// TestReadmeListsEverySetting keeps the README's configuration table in step
// with Vars: every setting needs a table row naming its variable.
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatalf("read %s: %v (the README's configuration table must list every WATCHROOM_* setting of config.Vars)", readmePath, err)
	}
	var rows []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "|") {
			rows = append(rows, line)
		}
	}
	for _, v := range Vars() {
		name := regexp.MustCompile(`(^|[^A-Z0-9_])` + regexp.QuoteMeta(v.Env) + `($|[^A-Z0-9_])`)
		if !slices.ContainsFunc(rows, name.MatchString) {
			t.Errorf("%s: no table row for %s (flag --%s, default %q: %s)", readmePath, v.Env, v.Flag, v.Default, v.Usage)
		}
	}
}
