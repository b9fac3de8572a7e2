package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

// jwtIETFPolicy: JWT routes in quota mode with rateLimits.ietfHeaders:
// api with an extra limit, plain without; a tier whose bucket X-RateLimit-*
// reports is its own (three: 3/minute), one whose is the route's (gold:
// 100/minute refills faster than api's 20/minute), an unlimited tier.
const jwtIETFPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  mode: quota
  ietfHeaders: true
  tiers:
    three: [{requests: 3, per: minute}, {requests: 50, per: hour}]
    gold: [{requests: 100, per: minute}]
    enterprise: unlimited
  defaultTier: three
  failureMode: open
gateways:
  - name: a
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt]}, rateLimit: {extra: [{requests: 20, per: minute}]}}
  - {name: plain, match: {pathPrefix: /plain}, backend: echo, auth: {methods: [jwt]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// ietfStep is one request of the compared sequence: path, and the tier
// of a fresh consumer sub ("" sends no token: 401). unlimited marks an
// unlimited tier on a route without extra limits, where only the IETF
// headers are compared: the filter path's backstop answers its unlimited
// descriptor with X-RateLimit-Limit and -Remaining 4294967295, the module
// with none (as before ietfHeaders; docs/operations/envoy-module.md).
type ietfStep struct {
	path, sub, tier string
	unlimited       bool
}

// ietfSequence: a consumer of three past its limit (3 admitted, then
// 429s), gold (the route's limit reported), enterprise on api (the
// route's limits alone) and on plain (none), three on plain, an unknown
// tier (the default tier's), and a 401.
var ietfSequence = []ietfStep{
	{"/api/x", "i-three", "three", false}, {"/api/x", "i-three", "three", false}, {"/api/x", "i-three", "three", false},
	{"/api/x", "i-three", "three", false}, {"/api/x", "i-three", "three", false},
	{"/api/x", "i-gold", "gold", false}, {"/api/x", "i-gold", "gold", false},
	{"/api/x", "i-ent", "enterprise", false}, {"/plain/x", "i-ent", "enterprise", true},
	{"/plain/x", "i-plain", "three", false}, {"/plain/x", "i-plain", "three", false},
	{"/api/x", "i-unknown", "platinum", false},
	{"/api/x", "", "", false},
}

// TestJWTModuleLimitsIETFHeaders: with rateLimits.ietfHeaders the module
// keeps the routes' limits and writes the IETF headers itself: the same
// request sequence through jwt_authn and the filter path (RLQS, backstop,
// header filters) and through the module gives every admitted response
// byte-identical X-RateLimit-*, RateLimit and RateLimit-Policy (one value
// each, or none: an unlimited tier on a route without extra limits, a
// 401); the 429s carry the same RateLimit-Policy, and the module's are
// the filter path's static RLQS denial (RateLimit r=0), counted by the
// module (it holds the limits, not the filters).
func TestJWTModuleLimitsIETFHeaders(t *testing.T) {
	got := map[string][]string{}
	var mu sync.Mutex
	t.Run("engines", func(t *testing.T) {
		for _, e := range jwtEngines {
			t.Run(e.name, func(t *testing.T) {
				t.Parallel()
				seen := runIETFSequence(t, e)
				mu.Lock()
				got[e.name] = seen
				mu.Unlock()
			})
		}
	})
	filters, module := got["jwt_authn"], got["module"]
	if t.Failed() || len(filters) != len(ietfSequence) || len(module) != len(ietfSequence) {
		t.Fatalf("a sequence did not complete: %d and %d of %d", len(filters), len(module), len(ietfSequence))
	}
	for i := range ietfSequence {
		if filters[i] != module[i] {
			t.Errorf("request %d %v:\n filter path %s\n module      %s", i+1, ietfSequence[i], filters[i], module[i])
		}
	}
	want := map[int]string{
		0:  `200 x-limit [3] x-remaining [2] x-reset [0] ratelimit ["three";r=2;t=0] policy ["three";q=3;w=60, "three";q=50;w=3600, "api";q=20;w=60]`,
		2:  `200 x-limit [3] x-remaining [0] x-reset [20] ratelimit ["three";r=0;t=20] policy ["three";q=3;w=60, "three";q=50;w=3600, "api";q=20;w=60]`,
		3:  `429 policy ["three";q=3;w=60, "three";q=50;w=3600, "api";q=20;w=60]`,
		5:  `200 x-limit [20] x-remaining [19] x-reset [0] ratelimit ["api";r=19;t=0] policy ["gold";q=100;w=60, "api";q=20;w=60]`,
		8:  `200 ratelimit [] policy []`,
		12: `401 policy []`,
	}
	for i, w := range want {
		if module[i] != w {
			t.Errorf("request %d %v: module %s, want %s", i+1, ietfSequence[i], module[i], w)
		}
	}
}

// runIETFSequence runs ietfSequence through a fresh stack of engine and
// returns what each response said (ietfView).
func runIETFSequence(t *testing.T, e jwtEngine) []string {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, jwtIETFPolicy, port), e.args(t)...)
	proxy := s.envoy("a", "jm-ietf-"+e.name, "delta")
	c := harness.NewHTTPClient(true)
	defer c.Close()
	var out []string
	for i, step := range ietfSequence {
		var h map[string]string
		if step.sub != "" {
			h = bearer(n.idp.rs256("k1", with(n.idp.claims(step.sub, "user"), "plan", step.tier)))
		}
		resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", port, step.path), "", h)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if resp.Status == 429 && e.name == "module" {
			checkModuleIETFDenial(t, resp)
		}
		out = append(out, ietfView(resp, step.unlimited))
	}
	if e.name == "module" { // the module holds the limits: its 429s are the sequence's two
		if c := moduleCounters(t, proxy); c["rq_table_rate_limited"]+c["rq_go_rate_limited"] != 2 {
			t.Errorf("module counters %v, want 2 rate-limited requests", c)
		}
	}
	return out
}

// ietfView is a response's status and rate-limit headers, every value:
// all of them when admitted (the IETF ones alone when unlimited),
// RateLimit-Policy otherwise (a 429's other values differ by design
// between RLQS's static denial and the backstop's).
func ietfView(resp *harness.HTTPResponse, unlimited bool) string {
	v := func(h string) string { return fmt.Sprintf("[%s]", strings.Join(resp.Header.Values(h), " | ")) }
	switch {
	case resp.Status != 200:
		return fmt.Sprintf("%d policy %s", resp.Status, v("RateLimit-Policy"))
	case unlimited:
		return fmt.Sprintf("200 ratelimit %s policy %s", v("RateLimit"), v("RateLimit-Policy"))
	}
	return fmt.Sprintf("200 x-limit %s x-remaining %s x-reset %s ratelimit %s policy %s", v("X-RateLimit-Limit"),
		v("X-RateLimit-Remaining"), v("X-RateLimit-Reset"), v("RateLimit"), v("RateLimit-Policy"))
}

// checkModuleIETFDenial checks a module 429 against the filter path's
// static RLQS denial of the three bucket (quotaDenial: the binding limit
// is 50/hour, Retry-After 72 s).
func checkModuleIETFDenial(t *testing.T, resp *harness.HTTPResponse) {
	t.Helper()
	for h, want := range map[string]string{"Retry-After": "72", "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset": "72", "RateLimit": `"three";r=0;t=72`} {
		if got := resp.Header.Values(h); !slices.Equal(got, []string{want}) {
			t.Errorf("module 429: %s %q, want exactly %q", h, got, want)
		}
	}
}
