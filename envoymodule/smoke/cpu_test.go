package smoke

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestModuleCPU (TOLLGATE_MODULE_CPU=1) is an indicative measurement, not
// a benchmark: Envoy's CPU time per request (utime+stime of the process,
// one keep-alive connection, requests in sequence) on /public (the module
// in the chain, no route config; the same Authorization header), /jwt with a token from the C table, and
// /jwt decided in Go (the Verifier's cache hit: "Bearer" + two spaces
// keeps the token off the C fast path), and both again on /roomy, whose
// limits the module enforces (every request admitted: 10^9 a second), in
// alternating rounds.
func TestModuleCPU(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" || os.Getenv("TOLLGATE_MODULE_CPU") == "" {
		t.Skip("set ENVOY_BIN and TOLLGATE_MODULE_CPU=1")
	}
	fx := newFixture(t)
	cfg := envoyConfig(filterConfig(fx.iss), fx.listen, fx.admin, fx.upstream)
	withRoomyRoute(cfg)
	withoutMetadataHeaders(cfg) // after: /roomy too
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	iss, listen := fx.iss, fx.listen
	tok, _ := iss.Token("alice", []string{"user"}, time.Hour, 0)
	kinds := []struct{ name, path, auth string }{
		{"public", "/public", "Bearer " + tok}, {"jwt, C table", "/jwt", "Bearer " + tok}, {"jwt, Go", "/jwt", "Bearer  " + tok},
		{"limited, C", "/roomy", "Bearer " + tok}, {"limited, Go", "/roomy", "Bearer  " + tok},
	}
	const n, rounds = 2000, 4
	sum := make([]time.Duration, len(kinds))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for r := 0; r < rounds; r++ {
		for i, k := range kinds {
			send(t, hc, listen, k.path, k.auth, 200) // warm
			before := cpu(t, p.cmd.Process.Pid)
			send(t, hc, listen, k.path, k.auth, n)
			sum[i] += cpu(t, p.cmd.Process.Pid) - before
		}
	}
	for i, k := range kinds {
		per := sum[i] / (n * rounds)
		t.Logf("%-13s %6.1f µs Envoy CPU/request, %.2f× of public", k.name, float64(per.Nanoseconds())/1000,
			float64(sum[0])/float64(sum[i]))
	}
}

// withoutMetadataHeaders drops the x-md-* request headers of cfg's routes:
// the upstream request then differs only by what the module writes.
func withoutMetadataHeaders(cfg map[string]any) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	vh := hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)
	for _, r := range vh["routes"].([]any) {
		delete(r.(map[string]any), "request_headers_to_add")
	}
}

func send(t *testing.T, hc *http.Client, listen int, path, auth string, n int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", listen, path), nil)
		if auth != "" {
			req.Header.Set("authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
}

// cpu is the process's user + system time (/proc/<pid>/stat, clock ticks
// of 10 ms).
func cpu(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// withRoomyIETFRoute adds /roomy-ietf: /roomy's limits (its own bucket)
// writing the IETF RateLimit headers too (rateLimits.ietfHeaders).
func withRoomyIETFRoute(cfg map[string]any) {
	roomy := ir.Limit{Requests: 1e9, Per: time.Second}
	ietf := &envoymod.IETFHeaders{Policy: `"roomy";q=1000000000;w=1, "roomy";q=1000000000;w=1`, RateLimitR: `"roomy";r=`, RateLimitT: ";t="}
	withRoute(cfg, "/roomy-ietf", envoymod.RouteConfig{Extensions: map[string]string{"route": "roomy", "methods": "jwt"},
		Limits: &envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "tier//roomy-ietf", Limits: []ir.Limit{roomy, roomy}, IETF: ietf},
			Unidentified: envoymod.LimitBucket{Deny: true}}})
}

// withRoomyRoute adds /roomy: a JWT route whose limits (two, 10^9 a second
// each) the module enforces and every request meets.
func withRoomyRoute(cfg map[string]any) {
	roomy := ir.Limit{Requests: 1e9, Per: time.Second}
	withRoute(cfg, "/roomy", envoymod.RouteConfig{Extensions: map[string]string{"route": "roomy", "methods": "jwt"},
		Limits: &envoymod.RouteLimits{Default: envoymod.LimitBucket{ID: "tier//roomy", Limits: []ir.Limit{roomy, roomy}},
			Unidentified: envoymod.LimitBucket{Deny: true}}})
}
