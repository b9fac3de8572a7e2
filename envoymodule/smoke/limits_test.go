package smoke

import (
	"fmt"
	"net/http"
	"os"
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

// routeLimits are /limited's limits: gold 3 a minute, everyone else 100 a
// minute, the unidentified refused.
func routeLimits() *envoymod.RouteLimits {
	return &envoymod.RouteLimits{
		Tiers: map[string]envoymod.LimitBucket{"gold": {ID: "tier/gold/limited", Limits: []ir.Limit{{Requests: 3, Per: time.Minute}},
			DenyBody: limitsDenyBody, DenyHeaders: limitsDenyHeaders}},
		Default:      envoymod.LimitBucket{ID: "tier//limited", Limits: []ir.Limit{{Requests: 100, Per: time.Minute}}, DenyBody: "default"},
		Unidentified: envoymod.LimitBucket{ID: "anonymous//limited", Deny: true, DenyBody: "unidentified"},
	}
}

// withLimitedRoute adds /limited (a JWT route with routeLimits) to cfg.
func withLimitedRoute(cfg map[string]any) {
	withRoute(cfg, "/limited", envoymod.RouteConfig{Extensions: map[string]string{"route": "limited", "methods": "jwt"},
		Limits: routeLimits()})
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
	withAccessLog(cfg, "access %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n")
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	s := session{t: t, p: p, iss: fx.iss}
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
	if n, all := strings.Count(log, "access 429 tollgate_rate_limited\n"), strings.Count(log, "access 429 "); n != 6 || all != 6 {
		t.Errorf("%d of %d logged 429s with details tollgate_rate_limited, want 6 of 6", n, all)
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
