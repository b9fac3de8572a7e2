package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

// quotaIETFPolicy: quota mode with rateLimits.ietfHeaders; tiers whose
// backstop bucket that X-RateLimit-* reports is the tier's (tiny: 5/minute
// refills at 1 per 12 s, the extra 20/minute at 1 per 3 s, both in 60 s)
// or the route's extra limit (gold: 100/minute refills faster than it), an
// unlimited tier, and anonymous limits.
const quotaIETFPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  ietfHeaders: true
  tiers:
    tiny: [{requests: 5, per: minute}, {requests: 50, per: hour}]
    gold: [{requests: 100, per: minute}]
    enterprise: unlimited
  defaultTier: tiny
  anonymous: [{requests: 3, per: minute}]
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, rateLimit: {extra: [{requests: 20, per: minute}]}}
  - {name: plain, match: {pathPrefix: /plain}, backend: echo}
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaIETFHeaders: with rateLimits.ietfHeaders, quota mode's
// admitted responses and the backstop's 429s carry exactly one
// RateLimit-Policy, the limits of the request's tier (or the anonymous
// limits) and the route's extra limits as exact mode writes them, and one
// RateLimit naming the limit whose bucket X-RateLimit-* describes, with
// r and t equal to that response's X-RateLimit-Remaining and Reset (the
// tier's bucket for tiny, the route's for gold); RLQS's 429s keep their
// static headers (one of each); an unlimited tier on a route without extra
// limits, and a 401, get none. With Redis down, the backstop's own 429s
// carry them too.
func TestQuotaIETFHeaders(t *testing.T) {
	r := startRedisStack(t, "rlq-ietf", func(port int, up string) string { return fmt.Sprintf(quotaIETFPolicy, port, up) })
	c := harness.NewHTTPClient(true)
	defer c.Close()
	get := func(path string, headers map[string]string) *harness.HTTPResponse {
		t.Helper()
		resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path), "", headers)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tiny := map[string]string{"x-api-key": r.key(t, "q-ietf-tiny", "tiny")}
	gold := map[string]string{"x-api-key": r.key(t, "q-ietf-gold", "gold")}
	ent := map[string]string{"x-api-key": r.key(t, "q-ietf-ent", "enterprise")}
	fresh := map[string]string{"x-api-key": r.key(t, "q-ietf-fresh", "tiny")}
	cases := []struct {
		name, path string
		headers    map[string]string
		n          int // requests; past the limit for tiny and anonymous
		policy     string
		limit      string // the RateLimit name ("" none)
		xLimit     string // X-RateLimit-Limit: the named limit's bucket
	}{
		{"tiny: the tier's bucket", "/api/x", tiny, 8, `"tiny";q=5;w=60, "tiny";q=50;w=3600, "api";q=20;w=60`, "tiny", "5"},
		{"gold: the route's bucket", "/api/x", gold, 3, `"gold";q=100;w=60, "api";q=20;w=60`, "api", "20"},
		{"unlimited tier: the route's limits", "/api/x", ent, 2, `"api";q=20;w=60`, "api", "20"},
		{"unlimited tier, no extra limits: none", "/plain/x", ent, 2, "", "", ""},
		{"tier on a route without extra limits", "/plain/x", tiny, 2, `"tiny";q=5;w=60, "tiny";q=50;w=3600`, "tiny", "5"},
		{"anonymous", "/open/x", nil, 5, `"anonymous";q=3;w=60`, "anonymous", "3"},
		{"401: none", "/api/x", nil, 1, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var statuses []string
			for i := 0; i < tc.n; i++ {
				resp := get(tc.path, tc.headers)
				kind := ""
				if resp.Status == 429 {
					kind = map[bool]string{true: " (RLQS)", false: " (backstop)"}[isRLQSDenial(resp)]
				}
				statuses = append(statuses, fmt.Sprint(resp.Status)+kind)
				checkIETFHeaders(t, resp, tc.policy, tc.limit)
				if got := resp.Header.Get("X-RateLimit-Limit"); tc.xLimit != "" && !isRLQSDenial(resp) && got != tc.xLimit {
					t.Errorf("%d: X-RateLimit-Limit %q, want %s (the bucket RateLimit names)", resp.Status, got, tc.xLimit)
				}
			}
			t.Logf("statuses %s", strings.Join(statuses, ", "))
		})
	}
	// With Redis down (failure mode open) RLQS assigns nothing and lets a
	// new consumer through: the backstop alone refuses, after 5.
	r.redis.kill(t)
	t.Run("the backstop's 429s (Redis down)", func(t *testing.T) {
		for i := 0; i < 7; i++ {
			resp := get("/api/x", fresh)
			if want := map[bool]int{true: 200, false: 429}[i < 5]; resp.Status != want || isRLQSDenial(resp) {
				t.Fatalf("request %d: %d %s, want %d from the backstop", i+1, resp.Status, resp.Body, want)
			}
			checkIETFHeaders(t, resp, `"tiny";q=5;w=60, "tiny";q=50;w=3600, "api";q=20;w=60`, "tiny")
		}
	})
}

// checkIETFHeaders checks resp's RateLimit-Policy (policy, "" none) and
// RateLimit (of the limit named limit, with X-RateLimit-Remaining and
// Reset of resp; an RLQS denial's static value is only counted).
func checkIETFHeaders(t *testing.T, resp *harness.HTTPResponse, policy, limit string) {
	t.Helper()
	pol, rl := resp.Header.Values("RateLimit-Policy"), resp.Header.Values("RateLimit")
	if policy == "" {
		if len(pol)+len(rl) > 0 {
			t.Errorf("%d: RateLimit-Policy %q, RateLimit %q, want none", resp.Status, pol, rl)
		}
		return
	}
	if !slices.Equal(pol, []string{policy}) {
		t.Errorf("%d %s: RateLimit-Policy %q, want exactly %q", resp.Status, resp.Body, pol, policy)
	}
	if isRLQSDenial(resp) {
		if len(rl) != 1 { // RLQS's static denial (TestQuotaDenialHeaders)
			t.Errorf("RLQS 429: RateLimit %q, want one", rl)
		}
		return
	}
	rem, reset := resp.Header.Values("X-RateLimit-Remaining"), resp.Header.Values("X-RateLimit-Reset")
	if len(rem) != 1 || len(reset) != 1 {
		t.Fatalf("%d: X-RateLimit-Remaining %q, Reset %q, want one of each", resp.Status, rem, reset)
	}
	if want := fmt.Sprintf("%q;r=%s;t=%s", limit, rem[0], reset[0]); !slices.Equal(rl, []string{want}) {
		t.Errorf("%d %s: RateLimit %q, want exactly %q", resp.Status, resp.Body, rl, want)
	}
}

// isRLQSDenial reports whether resp is an RLQS denial (429, a JSON body
// naming the limit), not the backstop's (backstopRefusal: no limit named).
func isRLQSDenial(resp *harness.HTTPResponse) bool {
	return resp.Status == 429 && strings.HasPrefix(string(resp.Body), `{"error":"rate_limited","limit":`)
}
