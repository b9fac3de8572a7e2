package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

// unknownTierPolicy: an unlimited default tier beside a limited one, and a
// JWT route whose extra limit (3/minute per consumer) takes a different
// place in the two tiers' backstop chains, so its backstop buckets are
// keyed by the tier; quota mode, failure mode open.
const unknownTierPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  mode: quota
  failureMode: open
  tiers:
    internal: unlimited
    partner: [{requests: 100, per: second}]
  defaultTier: internal
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt]}, rateLimit: {extra: [{requests: 3, per: minute}]}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// TestQuotaBackstopExtraForUnknownTier: with Redis down (failure mode
// open: RLQS admits everything) the backstop alone holds the route's
// extra 3/minute per consumer, whatever the consumer's tier: one of the
// unlimited default tier, and one whose token names a tier the policy
// does not know (counted in the default tier), each get 3 of 5. Before,
// the extra buckets keyed by tier had none for an unknown tier beside an
// unlimited default (no unknown-tier chain): it got 5 of 5, unbounded.
func TestQuotaBackstopExtraForUnknownTier(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, unknownTierPolicy, port))
	s.envoy("public", "rlq-unknown-tier", "delta")
	a := n.authStack(s, port)
	n.redis.kill(t)
	for _, plan := range []string{"internal", "platinum"} {
		c := a.idp.claims("ut-" + plan)
		c["plan"] = plan
		h := bearer(a.idp.rs256("k1", c))
		var got []string
		for range 5 {
			code, _, _ := a.call(t, "/api/x", h)
			got = append(got, fmt.Sprint(code))
		}
		if want := "200 200 200 429 429"; strings.Join(got, " ") != want {
			t.Errorf("tier %s, Redis down, extra 3/minute: %s, want %s", plan, strings.Join(got, " "), want)
		}
	}
}
