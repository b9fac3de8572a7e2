package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// jwtModuleLimitsPolicy: JWT-only routes in quota mode, two gateways (one
// Envoy each) sharing the route api, for Tollgate's Envoy module, which
// then enforces the limits itself (no set_filter_state, rate_limit_quota
// or backstop filter; xds/translator jwtmodule_limits.go) and reports to
// the quota server over its own RLQS stream; perip's limit, keyed by the
// client address, stays on the filter path (set_filter_state,
// rate_limit_quota and the backstop run for it, and are turned off on
// api). FAILURE is the failure mode.
const jwtModuleLimitsPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  mode: quota
  tiers:
    tiny: [{requests: 10, per: minute}]
    shared: [{requests: 60, per: minute}]
    busy: [{requests: 600, per: minute}]
    three: [{requests: 3, per: minute}]
    enterprise: unlimited
  defaultTier: tiny
  failureMode: FAILURE
gateways:
  - name: a
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
  - name: b
    listeners: [{name: http, port: {{.Second}}, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt]}}
  - {name: perip, match: {pathPrefix: /perip}, backend: echo, auth: {methods: [jwt]}, rateLimit: {consumer: false, extra: [{requests: 3, per: minute}], by: [clientIP]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// moduleLimits is a control plane serving jwtModuleLimitsPolicy with the
// module, Envoy A started (B on demand), and its IdP and Redis.
type moduleLimits struct {
	*rlStack
	env          nativeEnv
	portB        int
	admissions   func(t *testing.T) int
	checksBefore int
}

func startModuleLimits(t *testing.T, failureMode string) *moduleLimits {
	t.Helper()
	n := startNativeEnv(t)
	pa, pb := harness.FreePort(t), harness.FreePort(t)
	policy := strings.Replace(n.policy(t, jwtModuleLimitsPolicy, pa, pb), "FAILURE", failureMode, 1)
	s := n.stack(t, policy, "--envoy-module", harness.BuildEnvoyModule(t))
	e := s.envoy("a", "jm-a", "delta")
	m := &moduleLimits{rlStack: &rlStack{stack: s, redis: n.redis, port: pa, up: n.upstream.Addr(), proxy: e}, env: n, portB: pb}
	m.checksBefore = s.transformMetric(t, "tollgate_authz_checks_total")
	return m
}

// token is a bearer header of a token for consumer sub of tier.
func (m *moduleLimits) token(sub, tier string) map[string]string {
	return bearer(m.env.idp.rs256("k1", with(m.env.idp.claims(sub, "user"), "plan", tier)))
}

// noExtAuthz fails t when ext_authz was asked anything since the start.
func (m *moduleLimits) noExtAuthz(t *testing.T) {
	t.Helper()
	if n := m.transformMetric(t, "tollgate_authz_checks_total") - m.checksBefore; n != 0 {
		t.Errorf("ext_authz served %d Check calls, want 0", n)
	}
}

// TestJWTModuleLimitsColdStartBurstIsExact: with the module enforcing the
// limits, a burst of twice a never seen consumer's limit in concurrent
// requests admits exactly the limit; every 429 carries the bucket's
// headers and a Retry-After after which a retry is admitted; the module
// reports to the quota server (the account holds what it admitted) and
// never calls ext_authz; an unlimited tier is never limited and costs
// Redis nothing.
func TestJWTModuleLimitsColdStartBurstIsExact(t *testing.T) {
	t.Parallel()
	m := startModuleLimits(t, "open")
	tok := m.token("mtiny-1", "tiny")
	codes, retry := m.burst(t, 20, 10, "/api/x", tok)
	t.Logf("cold-start burst of 20 (limit 10/minute): %v", codes)
	if codes[200] != 10 || codes[429] != 10 {
		t.Fatalf("statuses %v, want exactly 10×200 and 10×429", codes)
	}
	denied, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", m.port), "", tok)
	if err != nil || denied.Status != 429 {
		t.Fatalf("after the burst: %v %v, want 429", denied, err)
	}
	for name, want := range map[string]string{"Retry-After": "6", "X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0",
		"Content-Type": "application/json", "Ratelimit-Policy": `"tiny";q=10;w=60`} {
		if got := denied.Header.Get(name); got != want {
			t.Errorf("429 %s = %q, want %q", name, got, want)
		}
	}
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		return m.transformMetric(t, "tollgate_rlqs_reported_requests_total") >= 21, nil
	}); err != nil {
		t.Fatalf("the quota server never saw the module's report of the burst: %v", err)
	}
	time.Sleep(time.Duration(maxOf(retry)) * time.Second)
	if resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", m.port), "", tok); err != nil || resp.Status != 200 {
		t.Fatalf("after Retry-After %ds: %v %v", maxOf(retry), resp, err)
	}
	if codes, _ := m.burst(t, 5, 5, "/api/x", tok); codes[200] != 0 {
		t.Fatalf("right after the refilled request: %v, want no more 200s", codes)
	}
	t.Run("unlimited tier", func(t *testing.T) {
		ent := m.token("ment-1", "enterprise")
		before := redisCalls(t, m.redis.addr, "evalsha") + redisCalls(t, m.redis.addr, "eval")
		if codes, _ := m.burst(t, 200, 10, "/api/x", ent); codes[200] != 200 {
			t.Fatalf("statuses %v", codes)
		}
		if after := redisCalls(t, m.redis.addr, "evalsha") + redisCalls(t, m.redis.addr, "eval"); after != before {
			t.Errorf("an unlimited tier cost %d Redis scripts", after-before)
		}
	})
	m.noExtAuthz(t)
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// TestJWTModuleLimitsTwoEnvoysShareOneLimit: as TestQuotaTwoEnvoysShareOneLimit
// with the module enforcing the limit in both Envoys: one consumer limited
// to 60/minute sends 8 req/s through Envoy A and 2 through B for 30 s;
// admitted stays within 5% above GCRA's 60 + 30 and reaches 90% of it.
func TestJWTModuleLimitsTwoEnvoysShareOneLimit(t *testing.T) {
	m := startModuleLimits(t, "open")
	m.envoy("b", "jm-b", "delta")
	checkEightyTwenty(t, m.port, m.portB, m.token("mshared-1", "shared"), 30*time.Second)
	m.noExtAuthz(t)
}

// TestJWTModuleLimitsRedisOutage: with Redis down the quota server answers
// the module's reports with the failure mode (closed: DENY_ALL, so 429;
// open: ALLOW_ALL under the module's local limits, so 200), counted per
// second; once Redis is back the server pushes fresh assignments over the
// module's stream: admitted again within 2 s. JWTs need no Redis, so the
// limited route itself shows it.
func TestJWTModuleLimitsRedisOutage(t *testing.T) {
	for _, tt := range []struct {
		mode       string
		wantDuring int
	}{{"closed", 429}, {"open", 200}} {
		t.Run(tt.mode, func(t *testing.T) {
			m := startModuleLimits(t, tt.mode)
			checkRedisOutage(t, m.rlStack, tt.mode, tt.wantDuring, "/api/x", m.token("mbusy-"+tt.mode, "busy"))
		})
	}
}

// TestJWTModuleLimitsAdmittedHeaders: the module's admitted responses
// carry the X-RateLimit-* the filter path's backstop gives for the same
// sequence: a fresh consumer of 3/minute on api (the module) and a fresh
// client address under perip's 3/minute (the filter path: local_ratelimit
// draft 03) both answer Limit 3, Remaining 2, 1, 0 and Reset 0, 0, 20
// (seconds until the next request is admitted), one value each.
func TestJWTModuleLimitsAdmittedHeaders(t *testing.T) {
	t.Parallel()
	m := startModuleLimits(t, "open")
	tok := m.token("mheaders-1", "three")
	c := harness.NewHTTPClient(true)
	defer c.Close()
	for i := range 3 {
		var got [2][3]string
		for k, path := range []string{"/api/x", "/perip/x"} {
			resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", m.port, path), "", tok)
			if err != nil || resp.Status != 200 {
				t.Fatalf("request %d on %s: %v %v", i+1, path, resp, err)
			}
			for j, h := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
				if vs := resp.Header.Values(h); len(vs) == 1 {
					got[k][j] = vs[0]
				}
			}
		}
		want := [3]string{"3", fmt.Sprint(2 - i), "0"}
		if i == 2 {
			want[2] = "20"
		}
		if got[0] != want || got[1] != want {
			t.Errorf("request %d: module %v, filter path %v, want both %v (one value each)", i+1, got[0], got[1], want)
		}
	}
	m.noExtAuthz(t)
}

// TestJWTModuleLimitsBesideTheFilterPath: on one listener, a route whose
// limits the module enforces (api) and a JWT route whose limit is keyed by
// the client address, which the quota filters enforce (perip): each holds
// its own limit exactly from a cold start, and neither counts the other's
// requests (the quota filters are off on api).
func TestJWTModuleLimitsBesideTheFilterPath(t *testing.T) {
	t.Parallel()
	m := startModuleLimits(t, "open")
	tok := m.token("mperip-1", "busy")
	if codes, _ := m.burst(t, 8, 4, "/perip/x", tok); codes[200] != 3 || codes[429] != 5 {
		t.Fatalf("perip (3/minute per client address, filter path): %v, want 3×200 and 5×429", codes)
	}
	if codes, _ := m.burst(t, 30, 5, "/api/x", tok); codes[200] != 30 {
		t.Fatalf("api (busy tier, 600/minute, the module) after perip's refusals: %v, want 30×200", codes)
	}
	tiny := m.token("mperip-2", "tiny")
	if codes, _ := m.burst(t, 20, 10, "/api/x", tiny); codes[200] != 10 || codes[429] != 10 {
		t.Fatalf("api, tiny tier (10/minute): %v, want 10×200 and 10×429", codes)
	}
	if codes, _ := m.burst(t, 2, 1, "/perip/x", tiny); codes[429] != 2 {
		t.Fatalf("perip after api's requests: %v, want 2×429 (the same client address, its 3 spent)", codes)
	}
	m.noExtAuthz(t)
}
