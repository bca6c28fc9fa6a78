package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	addUser(t, st, "alice", model.RoleOperator)
	e := newEnv(t, st, nil)

	t.Run("ok", func(t *testing.T) {
		r := e.do(t, http.MethodPost, "/api/login", "", map[string]string{"username": "alice", "password": testPassword})
		var got struct {
			Token     string `json:"token"`
			ExpiresAt string `json:"expires_at"`
			User      string `json:"user"`
			Role      string `json:"role"`
		}
		decode(t, r, &got)
		if got.User != "alice" || got.Role != "operator" {
			t.Errorf("user, role = %q, %q; want alice, operator", got.User, got.Role)
		}
		cl, err := e.tokens.Verify(got.Token)
		if err != nil {
			t.Fatalf("the returned token does not verify: %v", err)
		}
		if cl.User != "alice" || cl.Role != model.RoleOperator {
			t.Errorf("token claims = %+v", cl)
		}
		exp, err := time.Parse(time.RFC3339Nano, got.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q is not RFC 3339: %v", got.ExpiresAt, err)
		}
		if !exp.Equal(cl.ExpiresAt) {
			t.Errorf("expires_at = %v, token expires %v", exp, cl.ExpiresAt)
		}
	})

	// Wrong password and unknown user must be indistinguishable.
	const badCreds = "wrong user name or password"
	var messages []string
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", "not the password"},
		{"unknown user", "mallory", testPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, http.MethodPost, "/api/login", "", map[string]string{"username": tc.user, "password": tc.password})
			wantError(t, r, http.StatusUnauthorized, "unauthorized", badCreds)
			messages = append(messages, string(r.body))
		})
	}
	if len(messages) == 2 && messages[0] != messages[1] {
		t.Errorf("wrong password and unknown user answer differently:\n%s\n%s", messages[0], messages[1])
	}

	for _, tc := range []struct {
		name, contentType, body, msg string
	}{
		{"missing password", "application/json", `{"username":"alice"}`, "required"},
		{"missing username", "application/json", `{"password":"x"}`, "required"},
		{"empty object", "application/json", `{}`, "required"},
		{"malformed JSON", "application/json", `{"username":`, "JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, "/api/login", tc.body)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			wantError(t, e.send(t, req), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	// Invalid requests count too (and cost no password hash), so the test
	// is quick: loginBurst attempts pass, the next is refused.
	for i := range loginBurst {
		r := e.do(t, http.MethodPost, "/api/login", "", map[string]string{"username": "alice"})
		if r.status != http.StatusBadRequest {
			t.Fatalf("attempt %d: status %d, want 400; %s", i+1, r.status, r.body)
		}
	}
	r := e.do(t, http.MethodPost, "/api/login", "", map[string]string{"username": "alice", "password": testPassword})
	wantError(t, r, http.StatusTooManyRequests, "rate_limited", "too many login attempts")

	// Other routes are not affected.
	if r := e.do(t, http.MethodGet, "/api/me", e.token(t, "alice", model.RoleViewer), nil); r.status != http.StatusOK {
		t.Errorf("GET /api/me after login rate limit: %s", r)
	}
}

func TestAPIRequiresToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	// An expired token: signed with the right secret an hour and a bit ago.
	expired, _, err := newTokens(t, func() time.Time { return time.Now().Add(-61 * time.Minute) }).Issue("alice", model.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(t, "alice", model.RoleAdmin)
	tampered := valid[:len(valid)-2] + "xx"

	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/me"},
		{http.MethodGet, "/api/sensors"},
		{http.MethodGet, "/api/sensors/s-1/readings"},
		{http.MethodGet, "/api/commands"},
		{http.MethodGet, "/api/stats"},
		{http.MethodGet, "/api/no-such-route"},
		{http.MethodGet, "/api"},
	}
	auths := []struct{ name, header string }{
		{"no token", ""},
		{"empty bearer", "Bearer "},
		{"basic auth", "Basic YWxpY2U6c2VjcmV0"},
		{"garbage token", "Bearer not.a.jwt"},
		{"tampered token", "Bearer " + tampered},
		{"expired token", "Bearer " + expired},
	}
	for _, rt := range routes {
		for _, a := range auths {
			t.Run(rt.path+"/"+a.name, func(t *testing.T) {
				req := newRequest(t, rt.method, rt.path, "")
				if a.header != "" {
					req.Header.Set("Authorization", a.header)
				}
				wantError(t, e.send(t, req), http.StatusUnauthorized, "unauthorized", "")
			})
		}
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok, exp, err := e.tokens.Issue("bob", model.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"Bearer", "bearer"} {
		t.Run(scheme, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, "/api/me", "")
			req.Header.Set("Authorization", scheme+" "+tok)
			var got map[string]string
			decode(t, e.send(t, req), &got)
			want := map[string]string{"user": "bob", "role": "analyst", "expires_at": protocol.FormatTime(exp)}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("GET /api/me = %v, want %v", got, want)
			}
		})
	}
}

func TestSensors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok := e.token(t, "alice", model.RoleViewer)

	r := e.do(t, http.MethodGet, "/api/sensors", tok, nil)
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("GET /api/sensors on an empty database = %s, want 200 []", r)
	}

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	insert(t, e, []model.Reading{
		{SensorID: "s-1", Metric: "temperature", Unit: "°C", Value: 20, TS: t0},
		{SensorID: "s-1", Metric: "temperature", Unit: "°C", Value: 21.5, TS: t0.Add(time.Minute)},
		{SensorID: "s-2", Metric: "humidity", Unit: "%", Value: 40, TS: t0.Add(2 * time.Minute)},
	})
	var got []model.Sensor
	decode(t, e.do(t, http.MethodGet, "/api/sensors", tok, nil), &got)
	want := []model.Sensor{
		{ID: "s-1", Metric: "temperature", Unit: "°C", FirstSeen: t0, LastSeen: t0.Add(time.Minute), LastValue: 21.5},
		{ID: "s-2", Metric: "humidity", Unit: "%", FirstSeen: t0.Add(2 * time.Minute), LastSeen: t0.Add(2 * time.Minute), LastValue: 40},
	}
	if len(got) != len(want) {
		t.Fatalf("GET /api/sensors = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Metric != w.Metric || g.Unit != w.Unit || g.LastValue != w.LastValue ||
			!g.FirstSeen.Equal(w.FirstSeen) || !g.LastSeen.Equal(w.LastSeen) {
			t.Errorf("sensor %d = %+v, want %+v", i, g, w)
		}
	}
}

func insert(t *testing.T, e *testEnv, rs []model.Reading) {
	t.Helper()
	if _, err := e.store.InsertReadings(testCtx(t), rs); err != nil {
		t.Fatalf("InsertReadings: %v", err)
	}
}

func cat(parts ...[]float64) []float64 {
	var out []float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

type readingsBody struct {
	SensorID string          `json:"sensor_id"`
	Metric   string          `json:"metric"`
	Readings []model.Reading `json:"readings"`
	Bucket   string          `json:"bucket"`
	Buckets  []model.Bucket  `json:"buckets"`
}

func TestReadings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok := e.token(t, "alice", model.RoleViewer)

	// 30 temperatures, one every 10 s, values 0..29, inside the default
	// window (the last hour); 3 humidities; one temperature of another
	// sensor; one temperature two hours ago.
	base := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Minute)
	var rs []model.Reading
	for i := range 30 {
		rs = append(rs, model.Reading{SensorID: "s-1", Metric: "temperature", Unit: "°C", Value: float64(i), TS: base.Add(time.Duration(i) * 10 * time.Second)})
	}
	for i := range 3 {
		rs = append(rs, model.Reading{SensorID: "s-1", Metric: "humidity", Value: 50 + float64(i), TS: base.Add(time.Duration(i)*time.Minute + 5*time.Second)})
	}
	rs = append(rs,
		model.Reading{SensorID: "s-2", Metric: "temperature", Value: 99, TS: base},
		model.Reading{SensorID: "s-1", Metric: "temperature", Value: -1, TS: base.Add(-2 * time.Hour)},
	)
	insert(t, e, rs)

	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	tempsFrom := func(lo, hi int) []float64 { // temperatures lo..hi inclusive
		var v []float64
		for i := lo; i <= hi; i++ {
			v = append(v, float64(i))
		}
		return v
	}

	tests := []struct {
		name   string
		id     string
		query  url.Values
		metric string    // want in the body
		values []float64 // want, in order
	}{
		{"default window, every metric", "s-1", nil, "",
			// ordered by ts: humidity i sits 5 s after temperature 6i
			cat(tempsFrom(0, 0), []float64{50}, tempsFrom(1, 6), []float64{51}, tempsFrom(7, 12), []float64{52}, tempsFrom(13, 29))},
		{"one metric", "s-1", url.Values{"metric": {"temperature"}}, "temperature", tempsFrom(0, 29)},
		{"RFC 3339 range", "s-1", url.Values{"metric": {"temperature"}, "from": {rfc(base.Add(50 * time.Second))}, "to": {rfc(base.Add(100 * time.Second))}}, "temperature", tempsFrom(5, 10)},
		{"RFC 3339 with offset", "s-1", url.Values{"metric": {"temperature"}, "from": {base.Add(50 * time.Second).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)}, "to": {rfc(base.Add(100 * time.Second))}}, "temperature", tempsFrom(5, 10)},
		{"Unix ms range", "s-1", url.Values{"metric": {"temperature"}, "from": {ms(base.Add(50 * time.Second))}, "to": {ms(base.Add(100 * time.Second))}}, "temperature", tempsFrom(5, 10)},
		{"older range", "s-1", url.Values{"metric": {"temperature"}, "from": {rfc(base.Add(-3 * time.Hour))}, "to": {rfc(base.Add(-time.Hour))}}, "temperature", []float64{-1}},
		{"limit keeps the newest", "s-1", url.Values{"metric": {"temperature"}, "limit": {"5"}}, "temperature", tempsFrom(25, 29)},
		{"other sensor", "s-2", nil, "", []float64{99}},
		{"unknown sensor", "s-404", nil, "", nil},
		{"unknown metric", "s-1", url.Values{"metric": {"pressure"}}, "pressure", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := "/api/sensors/" + tc.id + "/readings"
			if tc.query != nil {
				target += "?" + tc.query.Encode()
			}
			r := e.do(t, http.MethodGet, target, tok, nil)
			if r.status == http.StatusOK && !strings.Contains(string(r.body), `"readings":[`) {
				t.Errorf("readings is not a JSON array: %s", r.body)
			}
			var got readingsBody
			decode(t, r, &got)
			if got.SensorID != tc.id || got.Metric != tc.metric {
				t.Errorf("sensor_id, metric = %q, %q; want %q, %q", got.SensorID, got.Metric, tc.id, tc.metric)
			}
			var values []float64
			for i, rd := range got.Readings {
				values = append(values, rd.Value)
				if rd.SensorID != tc.id {
					t.Errorf("reading %d of sensor %q", i, rd.SensorID)
				}
				if i > 0 && rd.TS.Before(got.Readings[i-1].TS) {
					t.Errorf("readings not oldest first at %d", i)
				}
			}
			if fmt.Sprint(values) != fmt.Sprint(tc.values) {
				t.Errorf("values = %v\nwant     %v", values, tc.values)
			}
		})
	}

	t.Run("bucket=1m", func(t *testing.T) {
		q := url.Values{"metric": {"temperature"}, "bucket": {"1m"}, "from": {rfc(base)}, "to": {rfc(base.Add(10 * time.Minute))}}
		var got readingsBody
		decode(t, e.do(t, http.MethodGet, "/api/sensors/s-1/readings?"+q.Encode(), tok, nil), &got)
		if got.Bucket != "1m0s" || got.Metric != "temperature" || got.Readings != nil {
			t.Errorf("bucket, metric, readings = %q, %q, %v", got.Bucket, got.Metric, got.Readings)
		}
		if len(got.Buckets) != 5 {
			t.Fatalf("got %d buckets, want 5: %+v", len(got.Buckets), got.Buckets)
		}
		for k, b := range got.Buckets {
			lo := float64(6 * k) // bucket k holds values 6k..6k+5
			want := model.Bucket{TS: base.Add(time.Duration(k) * time.Minute), Min: lo, Avg: lo + 2.5, Max: lo + 5, Count: 6}
			if !b.TS.Equal(want.TS) || b.Min != want.Min || b.Avg != want.Avg || b.Max != want.Max || b.Count != want.Count {
				t.Errorf("bucket %d = %+v, want %+v", k, b, want)
			}
		}
	})

	t.Run("bucket without readings", func(t *testing.T) {
		q := url.Values{"metric": {"temperature"}, "bucket": {"1m"}}
		r := e.do(t, http.MethodGet, "/api/sensors/s-404/readings?"+q.Encode(), tok, nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"buckets":[]`) {
			t.Errorf("got %s, want 200 with buckets []", r)
		}
	})

	long := strings.Repeat("x", model.MaxIDLen+1)
	bad := []struct {
		name, target, msg string
	}{
		{"id with a bad character", "/api/sensors/s%201/readings", "sensor id"},
		{"id too long", "/api/sensors/" + long + "/readings", "sensor id"},
		{"bad metric", "/api/sensors/s-1/readings?metric=temp%21", "metric"},
		{"metric too long", "/api/sensors/s-1/readings?metric=" + long, "metric"},
		{"bad from", "/api/sensors/s-1/readings?from=yesterday", "from must be an RFC 3339 time or Unix milliseconds"},
		{"bad to", "/api/sensors/s-1/readings?to=2026-13-01", "to must be an RFC 3339 time or Unix milliseconds"},
		{"negative ms", "/api/sensors/s-1/readings?to=-5", "to must be"},
		{"from after to", "/api/sensors/s-1/readings?from=" + ms(base) + "&to=" + ms(base.Add(-time.Minute)), "from must be before to"},
		{"from equals to", "/api/sensors/s-1/readings?from=" + ms(base) + "&to=" + ms(base), "from must be before to"},
		{"limit zero", "/api/sensors/s-1/readings?limit=0", "limit must be an integer from 1 to 10000"},
		{"limit too big", "/api/sensors/s-1/readings?limit=10001", "limit must be an integer from 1 to 10000"},
		{"limit not a number", "/api/sensors/s-1/readings?limit=ten", "limit must be"},
		{"bucket not a duration", "/api/sensors/s-1/readings?metric=temperature&bucket=minute", "bucket must be a duration"},
		{"bucket under 1s", "/api/sensors/s-1/readings?metric=temperature&bucket=500ms", "bucket must be a duration"},
		{"negative bucket", "/api/sensors/s-1/readings?metric=temperature&bucket=-1m", "bucket must be a duration"},
		{"too many buckets", "/api/sensors/s-1/readings?metric=temperature&bucket=1s&from=" + ms(base.Add(-2*time.Hour)) + "&to=" + ms(base), "too many buckets"},
		{"bucket without metric", "/api/sensors/s-1/readings?bucket=1m", "metric"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(t, http.MethodGet, tc.target, tok, nil), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok := e.token(t, "alice", model.RoleOperator)

	r := e.do(t, http.MethodGet, "/api/commands", tok, nil)
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"commands":[]}` {
		t.Fatalf("GET /api/commands with none = %s, want {\"commands\":[]}", r)
	}

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, c := range []model.Command{
		{ID: "c1", SensorID: "s-1", Action: "calibrate_sensor", IssuedBy: "alice", IssuedAt: t0},
		{ID: "c2", SensorID: "s-2", Action: "reboot", IssuedBy: "bob", IssuedAt: t0.Add(time.Minute), Params: json.RawMessage(`{"delay":5}`)},
		{ID: "c3", SensorID: "s-1", Action: "reboot", IssuedBy: "alice", IssuedAt: t0.Add(2 * time.Minute)},
	} {
		if err := e.store.InsertCommand(testCtx(t), c); err != nil {
			t.Fatalf("InsertCommand %d: %v", i, err)
		}
	}
	if _, err := e.store.FinishCommand(testCtx(t), "c1", model.CommandSuccess, "done", t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatalf("FinishCommand: %v", err)
	}

	tests := []struct {
		name, query string
		ids         []string
	}{
		{"all, newest first", "", []string{"c3", "c2", "c1"}},
		{"one sensor", "?sensor_id=s-1", []string{"c3", "c1"}},
		{"other sensor", "?sensor_id=s-2", []string{"c2"}},
		{"unknown sensor", "?sensor_id=s-9", nil},
		{"limit", "?limit=1", []string{"c3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				Commands []model.Command `json:"commands"`
			}
			decode(t, e.do(t, http.MethodGet, "/api/commands"+tc.query, tok, nil), &got)
			var ids []string
			for _, c := range got.Commands {
				ids = append(ids, c.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
				t.Errorf("command ids = %v, want %v", ids, tc.ids)
			}
			for _, c := range got.Commands {
				if c.ID == "c1" && (c.Status != model.CommandSuccess || c.Message != "done" || c.LatencyMS == nil || *c.LatencyMS != 1500) {
					t.Errorf("c1 = %+v, want success, done, 1500 ms", c)
				}
				if c.ID == "c2" && (c.Status != model.CommandPending || string(c.Params) != `{"delay": 5}` && string(c.Params) != `{"delay":5}`) {
					t.Errorf("c2 = %+v (params %s), want pending with its params", c, c.Params)
				}
			}
		})
	}

	// Viewers and analysts get the history without command ids and params.
	for _, role := range []model.Role{model.RoleViewer, model.RoleAnalyst} {
		t.Run("redacted for "+string(role), func(t *testing.T) {
			var got struct {
				Commands []map[string]json.RawMessage `json:"commands"`
			}
			decode(t, e.do(t, http.MethodGet, "/api/commands", e.token(t, "victor", role), nil), &got)
			if len(got.Commands) != 3 {
				t.Fatalf("%d commands, want 3", len(got.Commands))
			}
			for _, c := range got.Commands {
				if _, ok := c["command_id"]; ok {
					t.Errorf("command_id shown to a %s: %v", role, c)
				}
				if _, ok := c["params"]; ok {
					t.Errorf("params shown to a %s: %v", role, c)
				}
				if c["action"] == nil || c["status"] == nil || c["issued_by"] == nil {
					t.Errorf("history row %v lacks action, status or issued_by", c)
				}
			}
		})
	}

	for _, tc := range []struct{ name, query, msg string }{
		{"bad sensor id", "?sensor_id=s%2F1", "sensor_id"},
		{"limit zero", "?limit=0", "limit must be an integer from 1 to 1000"},
		{"limit too big", "?limit=1001", "limit must be an integer from 1 to 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(t, http.MethodGet, "/api/commands"+tc.query, tok, nil), http.StatusBadRequest, "bad_request", tc.msg)
		})
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	var got hub.Stats
	decode(t, e.do(t, http.MethodGet, "/api/stats", e.token(t, "alice", model.RoleViewer), nil), &got)
	if got != e.hub.stats {
		t.Errorf("GET /api/stats = %+v, want %+v", got, e.hub.stats)
	}
}

func TestUnknownAPIRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	tok := e.token(t, "alice", model.RoleViewer)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/nope"},
		{http.MethodPost, "/api/sensors"},
		{http.MethodDelete, "/api/me"},
		{http.MethodGet, "/api/sensors/s-1"},
		{http.MethodGet, "/api/"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			wantError(t, e.do(t, tc.method, tc.path, tok, nil), http.StatusNotFound, "not_found", "no such API route")
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	addr := serve(t, e.app) // app.Test refuses such a body before sending it
	// Announce a body over the limit and send none of it: the server must
	// answer from the headers alone. (Sending the body races the server's
	// early answer and close: the client may see a reset instead.)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /api/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 65<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, response{status: resp.StatusCode, header: resp.Header, body: b},
		http.StatusRequestEntityTooLarge, "too_large", "Too Large")
}
