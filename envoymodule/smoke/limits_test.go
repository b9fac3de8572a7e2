package smoke

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// limitsDenyBody and limitsDenyHeaders are the static 429 of the smoke
// route's gold bucket.
const limitsDenyBody = `{"error":"rate_limited","limit":"gold","retryAfter":20}`

var limitsDenyHeaders = []envoymod.Header{{Name: "retry-after", Value: "20"}, {Name: "content-type", Value: "application/json"},
	{Name: "x-ratelimit-limit", Value: "3"}, {Name: "x-ratelimit-remaining", Value: "0"}}

// routeLimits are /limited's limits: gold 3 a minute, bronze 1,000 an
// hour and 5 a minute (reporting the minute: the backstop's choice),
// free unlimited, everyone else 100 a minute, the unidentified refused.
func routeLimits() *envoymod.RouteLimits {
	return &envoymod.RouteLimits{
		Tiers: map[string]envoymod.LimitBucket{"gold": {ID: "tier/gold/limited", Limits: []ir.Limit{{Requests: 3, Per: time.Minute}},
			DenyBody: limitsDenyBody, DenyHeaders: limitsDenyHeaders},
			"bronze": {ID: "tier/bronze/limited", Limits: []ir.Limit{{Requests: 1000, Per: time.Hour}, {Requests: 5, Per: time.Minute}},
				ReportedLimit: 1, DenyBody: "bronze", DenyHeaders: []envoymod.Header{{Name: "x-ratelimit-reset", Value: "12"}}},
			"free": {ID: "unlimited//limited", Unlimited: true}},
		Default:      envoymod.LimitBucket{ID: "tier//limited", Limits: []ir.Limit{{Requests: 100, Per: time.Minute}}, DenyBody: "default"},
		Unidentified: envoymod.LimitBucket{ID: "anonymous//limited", Deny: true, DenyBody: "unidentified"},
	}
}

// ietfLimits are routeLimits with bronze's bucket writing the IETF
// RateLimit headers (rateLimits.ietfHeaders) as the translator gives them.
func ietfLimits() *envoymod.RouteLimits {
	rl := routeLimits()
	b := rl.Tiers["bronze"]
	b.IETF = &envoymod.IETFHeaders{Policy: `"bronze";q=1000;w=3600, "bronze";q=5;w=60`, RateLimitR: `"bronze";r=`, RateLimitT: ";t="}
	rl.Tiers["bronze"] = b
	return rl
}

// withLimitedRoute adds /limited (a JWT route with routeLimits) to cfg.
func withLimitedRoute(cfg map[string]any) {
	withRoute(cfg, "/limited", envoymod.RouteConfig{Extensions: map[string]string{"route": "limited", "methods": "jwt"},
		Limits: routeLimits()})
}

// withUpstreamRateLimitHeaders makes the route at prefix answer with its
// own X-RateLimit-* 999 (as an upstream that sets them): the module adds
// its own after them, as the filter path's local_ratelimit does, and its
// own RateLimit and RateLimit-Policy 999, which the module's IETF headers
// replace, as the filter path's header_mutation does.
func withUpstreamRateLimitHeaders(cfg map[string]any, prefix string) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	for _, r := range hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)["routes"].([]any) {
		r := r.(map[string]any)
		if r["match"].(map[string]any)["prefix"] != prefix {
			continue
		}
		var add []any
		for _, h := range []string{"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit", "ratelimit-policy"} {
			add = append(add, map[string]any{"header": map[string]any{"key": h, "value": "999"}, "append_action": "APPEND_IF_EXISTS_OR_ADD"})
		}
		r["response_headers_to_add"] = add
	}
}

// withAccessLog makes cfg's listener log every request to Envoy's stderr
// in format.
func withAccessLog(cfg map[string]any, format string) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	hcm["access_log"] = []any{map[string]any{"name": "envoy.access_loggers.stderr", "typed_config": map[string]any{
		"@type":      "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
		"log_format": map[string]any{"text_format_source": map[string]any{"inline_string": format}}}}}
}

// withRoute puts a module route with rc at prefix first in cfg's routes.
func withRoute(cfg map[string]any, prefix string, rc envoymod.RouteConfig) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	vh := hcm["route_config"].(map[string]any)["virtual_hosts"].([]any)[0].(map[string]any)
	r := moduleRoute(prefix, rc.Extensions)
	r["typed_per_filter_config"].(map[string]any)[envoymod.FilterName].(map[string]any)["filter_config"] = stringValue(rc)
	vh["routes"] = append([]any{r}, vh["routes"].([]any)...)
}

// TestModuleLimits: the module enforces a route's limits itself, with no
// quota server reachable (Quota names a closed port): concurrent requests
// of one token, twice the burst, are admitted exactly the burst, the rest
// refused with the bucket's static 429 (details tollgate_rate_limited in
// the access log); another consumer and another tier have their own
// buckets.
func TestModuleLimits(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	fc := filterConfig(fx.iss)
	fc.Quota = &envoymod.Quota{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Domain: ir.RateLimitQuotaDomain}
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withLimitedRoute(cfg)
	withRoute(cfg, "/reported", envoymod.RouteConfig{Extensions: map[string]string{"route": "limited", "methods": "jwt"},
		Limits: routeLimits()})
	withUpstreamRateLimitHeaders(cfg, "/reported")
	withRoute(cfg, "/ietf", envoymod.RouteConfig{Extensions: map[string]string{"route": "limited", "methods": "jwt"},
		Limits: ietfLimits()})
	withUpstreamRateLimitHeaders(cfg, "/ietf")
	withAccessLog(cfg, "access %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n")
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := session{t: t, p: p, iss: fx.iss}
	t.Run("admitted responses' headers", s.limitedHeaders)
	t.Run("IETF headers", s.limitedIETF)
	t.Run("twice the burst at once", s.limitedBurst)
	t.Run("another consumer, another tier", s.limitedOthers)
	t.Run("unlimited routes untouched", s.limitedNotElsewhere)
	t.Run("429 details", s.limitedDetails)
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// concurrently sends n requests with tok to path at once.
func concurrently(t *testing.T, listen, n int, path, tok string) []answer {
	t.Helper()
	out := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = get(t, listen, path, map[string]string{"authorization": "Bearer " + tok})
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// limitedHeaders: the admitted responses of a fresh consumer carry
// one set of X-RateLimit-* of the reported limit (bronze's 5 a minute,
// not its hour), after the upstream's (999): remaining 4,3,2,1,0 and
// reset 0 until the last (12 s: one request per 12 s), as Envoy's
// local_ratelimit backstop answers; the first decided in Go, the others
// from the C table. The 429 keeps its static headers; an unlimited tier
// and a route without limits get none.
func (s session) limitedHeaders(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "headers", "tier": "bronze"})
	auth := map[string]string{"authorization": "Bearer " + tok}
	for i := range 5 {
		a := get(t, s.p.listen, "/reported/x", auth)
		want := map[string]string{"X-Ratelimit-Limit": "5", "X-Ratelimit-Remaining": fmt.Sprint(4 - i), "X-Ratelimit-Reset": "0"}
		if i == 4 {
			want["X-Ratelimit-Reset"] = "12"
		}
		if a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, a.status, a.body)
		}
		for h, v := range want {
			if got := a.header.Values(h); !slices.Equal(got, []string{"999", v}) {
				t.Errorf("request %d: %s %q, want the upstream's 999 then %q", i+1, h, got, v)
			}
		}
	}
	// Envoy adds the route's response headers (the stand-in upstream
	// copy) to local replies too: the module adds nothing to its 429.
	a := get(t, s.p.listen, "/reported/x", auth)
	if a.status != http.StatusTooManyRequests || a.body != "bronze" ||
		!slices.Equal(a.header.Values("X-Ratelimit-Reset"), []string{"999", "12"}) ||
		!slices.Equal(a.header.Values("X-Ratelimit-Limit"), []string{"999"}) {
		t.Errorf("the sixth: %d %q %v, want the static 429 (and the route's additions)", a.status, a.body, a.header)
	}
	free := s.token(t, map[string]any{"sub": "headers", "tier": "free"})
	for _, path := range []string{"/limited/x", "/jwt"} {
		a := get(t, s.p.listen, path, map[string]string{"authorization": "Bearer " + free})
		if a.status != http.StatusOK || a.header.Get("X-Ratelimit-Limit") != "" || a.header.Get("X-Ratelimit-Remaining") != "" {
			t.Errorf("%s, unlimited tier: %d %v, want 200 without X-RateLimit-*", path, a.status, a.header)
		}
	}
}

// limitedIETF: on a bucket with IETF headers the admitted responses of a
// fresh consumer also carry RateLimit-Policy as given and RateLimit with
// the X-RateLimit-Remaining and -Reset of the same response, each
// replacing the upstream's (999), after the X-RateLimit-*; the 429 keeps
// its static headers (the module adds no RateLimit: the route's 999
// stays alone); an unlimited tier and a bucket without IETF get none.
func (s session) limitedIETF(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "ietf", "tier": "bronze"})
	auth := map[string]string{"authorization": "Bearer " + tok}
	policy := ietfLimits().Tiers["bronze"].IETF.Policy
	for i := range 5 {
		a := get(t, s.p.listen, "/ietf/x", auth)
		reset := map[bool]string{true: "12", false: "0"}[i == 4]
		want := fmt.Sprintf(`"bronze";r=%d;t=%s`, 4-i, reset)
		if a.status != http.StatusOK || !slices.Equal(a.header.Values("Ratelimit"), []string{want}) ||
			!slices.Equal(a.header.Values("Ratelimit-Policy"), []string{policy}) ||
			!slices.Equal(a.header.Values("X-Ratelimit-Remaining"), []string{"999", fmt.Sprint(4 - i)}) ||
			!slices.Equal(a.header.Values("X-Ratelimit-Reset"), []string{"999", reset}) {
			t.Errorf("request %d: %d %v, want RateLimit %q and RateLimit-Policy %q alone", i+1, a.status, a.header, want, policy)
		}
	}
	a := get(t, s.p.listen, "/ietf/x", auth)
	if a.status != http.StatusTooManyRequests || a.body != "bronze" || !slices.Equal(a.header.Values("Ratelimit"), []string{"999"}) ||
		!slices.Equal(a.header.Values("Ratelimit-Policy"), []string{"999"}) {
		t.Errorf("the sixth: %d %q %v, want the static 429 (and the route's additions)", a.status, a.body, a.header)
	}
	free := s.token(t, map[string]any{"sub": "ietf", "tier": "free"})
	silver := s.token(t, map[string]any{"sub": "ietf", "tier": "silver"})
	for _, tok := range []string{free, silver} {
		a := get(t, s.p.listen, "/ietf/x", map[string]string{"authorization": "Bearer " + tok})
		if a.status != http.StatusOK || !slices.Equal(a.header.Values("Ratelimit"), []string{"999"}) {
			t.Errorf("a bucket without IETF headers: %d %v, want 200 with the upstream's RateLimit alone", a.status, a.header)
		}
	}
}

func (s session) limitedBurst(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "burst", "tier": "gold"})
	answers := concurrently(t, s.p.listen, 6, "/limited/x", tok)
	answers = append(answers, get(t, s.p.listen, "/limited/y", map[string]string{"authorization": "Bearer " + tok}))
	ok, limited := 0, 0
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok++
			if a.upstream["x-user-id"] != "corp:burst" || a.upstream["x-md-route"] != "limited" {
				t.Errorf("admitted request upstream: %v", identityView(a.upstream))
			}
		case http.StatusTooManyRequests:
			limited++
			if strings.TrimSpace(a.body) != limitsDenyBody {
				t.Errorf("429 body %q", a.body)
			}
			for _, h := range limitsDenyHeaders {
				if got := a.header.Get(h.Name); got != h.Value {
					t.Errorf("429 header %s: %q, want %q", h.Name, got, h.Value)
				}
			}
		default:
			t.Errorf("unexpected %d %s", a.status, a.body)
		}
	}
	if ok != 3 || limited != 4 {
		t.Errorf("%d admitted, %d limited; want 3 and 4 (burst 3)", ok, limited)
	}
}

func (s session) limitedOthers(t *testing.T) {
	gold := s.token(t, map[string]any{"sub": "other", "tier": "gold"})
	silver := s.token(t, map[string]any{"sub": "silver", "tier": "silver"})
	if n := count(concurrently(t, s.p.listen, 5, "/limited", gold), 200); n != 3 {
		t.Errorf("another gold consumer: %d admitted, want its own 3", n)
	}
	if n := count(concurrently(t, s.p.listen, 10, "/limited", silver), 200); n != 10 {
		t.Errorf("a silver consumer (default bucket, 100 a minute): %d of 10 admitted", n)
	}
}

func (s session) limitedNotElsewhere(t *testing.T) {
	tok := s.token(t, map[string]any{"sub": "burst", "tier": "gold"}) // spent on /limited
	if n := count(concurrently(t, s.p.listen, 5, "/jwt", tok), 200); n != 5 {
		t.Errorf("/jwt (no limits): %d of 5 admitted", n)
	}
}

// limitedDetails stops Envoy (which flushes its access log) and finds
// each 429 of the tests above logged with details tollgate_rate_limited.
func (s session) limitedDetails(t *testing.T) {
	s.p.stop()
	log := s.p.log()
	if n, all := strings.Count(log, "access 429 tollgate_rate_limited\n"), strings.Count(log, "access 429 "); n != 8 || all != 8 {
		t.Errorf("%d of %d logged 429s with details tollgate_rate_limited, want 8 of 8", n, all)
	}
}

func count(as []answer, status int) int {
	n := 0
	for _, a := range as {
		if a.status == status {
			n++
		}
	}
	return n
}
