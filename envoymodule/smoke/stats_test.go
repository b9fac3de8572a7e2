package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// statNames are the module's counters (stats.c) as Envoy's /stats names
// them.
var statNames = []string{"rq_table_allowed", "rq_table_rate_limited", "rq_go_allowed", "rq_go_rate_limited",
	"rq_go_unauthenticated", "rq_go_forbidden", "rq_go_unavailable", "rq_go_denied_other", "rq_go_passed",
	"limit_buckets_created", "limit_buckets_evicted", "jwks_parked", "jwks_park_full", "rq_charged_allowed",
	"rq_charged_rate_limited", "keys_learned"}

// TestModuleStats: after known requests, Envoy's admin shows each of the
// module's counters at its exact count, the same in /stats and
// /stats/prometheus; a second listener (a second filter configuration,
// as a push builds) adds to the same counters; requests the module does
// not decide (no per-route config) are not counted.
func TestModuleStats(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	cfg := envoyConfig(filterConfig(fx.iss), fx.listen, fx.admin, fx.upstream)
	withLimitedRoute(cfg)
	withRoute(cfg, "/keys", envoymod.RouteConfig{Extensions: map[string]string{"route": "keys", "methods": "jwt,apiKey"}})
	second := freePort(t)
	withSecondListener(t, cfg, second)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := session{t: t, p: p, iss: fx.iss}
	want := map[string]int{}
	for _, n := range statNames {
		want[n] = 0
	}
	if got := moduleStats(t, fx.admin); !maps.Equal(got, want) {
		t.Fatalf("at start: %v, want every counter at 0: %v", got, want)
	}
	s.statsRequests(t, fx.listen, second)
	want["rq_go_allowed"] = 2         // /jwt first, /jwt on the second listener
	want["rq_table_allowed"] = 4      // /jwt again, /limited first to third
	want["rq_table_rate_limited"] = 2 // /limited fourth and fifth
	want["rq_go_rate_limited"] = 1    // /limited with another token of the same consumer
	want["rq_go_unauthenticated"] = 1 // no token
	want["rq_go_forbidden"] = 2       // /admin without the role, /norq
	want["rq_go_unavailable"] = 1     // an API key where the module has no key store
	want["limit_buckets_created"] = 1 // the consumer's gold bucket
	if got := moduleStats(t, fx.admin); !maps.Equal(got, want) {
		t.Errorf("/stats: %v\nwant %v", got, want)
	}
	if got := modulePrometheus(t, fx.admin); !maps.Equal(got, want) {
		t.Errorf("/stats/prometheus: %v\nwant %v", got, want)
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// statsRequests sends the requests TestModuleStats counts, checking each
// answer's status.
func (s session) statsRequests(t *testing.T, listen, second int) {
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	tok := s.token(t, map[string]any{"sub": "stats", "tier": "gold"})
	again := s.token(t, map[string]any{"sub": "stats", "tier": "gold", "jti": "another"}) // another token, same consumer
	steps := []struct {
		listen  int
		path    string
		headers map[string]string
		status  int
	}{
		{listen, "/jwt", bearer(tok), 200},   // Go, into the table
		{listen, "/jwt", bearer(tok), 200},   // table
		{listen, "/public", nil, 200},        // no per-route config: not counted
		{listen, "/jwt", nil, 401},           // Go
		{listen, "/admin", bearer(tok), 403}, // table miss (role), Go
		{listen, "/norq", bearer(tok), 403},  // Go
		{listen, "/keys", map[string]string{"x-api-key": "k"}, 503},
		{listen, "/limited", bearer(tok), 200},   // Go: the table entry is /jwt's, /limited is charged in Go (bucket created)
		{listen, "/limited", bearer(tok), 200},   // table
		{listen, "/limited", bearer(tok), 200},   // table: the burst of 3 spent
		{listen, "/limited", bearer(tok), 429},   // table
		{listen, "/limited", bearer(tok), 429},   // table
		{listen, "/limited", bearer(again), 429}, // Go (a new token), same bucket
		{second, "/jwt", bearer(tok), 200},       // the second listener's filter config: its own table, Go
	}
	for i, st := range steps {
		if a := get(t, st.listen, st.path, st.headers); a.status != st.status {
			t.Fatalf("step %d %s: %d %s, want %d", i, st.path, a.status, a.body, st.status)
		}
	}
}

// withSecondListener adds a copy of cfg's listener on port: its own HTTP
// connection manager and module filter configuration.
func withSecondListener(t *testing.T, cfg map[string]any, port int) {
	t.Helper()
	sr := cfg["static_resources"].(map[string]any)
	b, err := json.Marshal(sr["listeners"].([]any)[0])
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]any
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	l["name"], l["address"] = "second", sockAddr(port)
	sr["listeners"] = append(sr["listeners"].([]any), l)
}

// moduleStats reads the module's counters from Envoy's /stats (JSON),
// where they carry the dynamic modules' namespace.
func moduleStats(t *testing.T, admin int) map[string]int {
	t.Helper()
	body := adminGet(t, admin, "/stats?format=json&filter=tollgate_module")
	var doc struct {
		Stats []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/stats: %v\n%s", err, body)
	}
	out := map[string]int{}
	for _, st := range doc.Stats {
		name, ok := trimPrefix(st.Name, "dynamicmodulescustom.tollgate_module.")
		if !ok || st.Value == nil {
			t.Errorf("unexpected stat %q", st.Name)
			continue
		}
		v, err := strconv.Atoi(string(st.Value))
		if err != nil {
			t.Fatalf("%s: %s", st.Name, st.Value)
		}
		out[name] = v
	}
	return out
}

// promCounter is a module counter in /stats/prometheus: Envoy 1.40 does
// not strip the dynamic modules' namespace there, and prefixes envoy_.
var promCounter = regexp.MustCompile(`(?m)^envoy_dynamicmodulescustom_tollgate_module_(\w+)\{\} (\d+)$`)

// modulePrometheus reads the module's counters from /stats/prometheus.
func modulePrometheus(t *testing.T, admin int) map[string]int {
	t.Helper()
	body := adminGet(t, admin, "/stats/prometheus")
	out := map[string]int{}
	for _, m := range promCounter.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.Atoi(m[2])
		out[m[1]] = v
	}
	return out
}

func adminGet(t *testing.T, admin int, path string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", admin, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func trimPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return s, false
	}
	return s[len(prefix):], true
}
