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
// extra 3/minute per consumer, whatever the consumer's tier: a token
// naming a tier the policy does not know counts in the default tier, as
// RLQS counts it (one bucket per route, default tier and consumer). A
// consumer of the unlimited default tier gets 3 of 5, then 0 of 5 with a
// token naming an unknown tier; another consumer's unknown-tier token 3 of
// 5. Before, such a token had no extra bucket at all (keyed by tier,
// none for an unknown tier beside an unlimited default): 5 of 5; then,
// with the unknown tier's own buckets, 3 more of 5 for the same consumer
// (twice the limit on one Envoy, of which the quota server's backstop
// bound charges one).
func TestQuotaBackstopExtraForUnknownTier(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, unknownTierPolicy, port))
	s.envoy("public", "rlq-unknown-tier", "delta")
	a := n.authStack(s, port)
	n.redis.kill(t)
	run := func(user, plan string) string {
		c := a.idp.claims(user)
		c["plan"] = plan
		h := bearer(a.idp.rs256("k1", c))
		var got []string
		for range 5 {
			code, _, _ := a.call(t, "/api/x", h)
			got = append(got, fmt.Sprint(code))
		}
		return strings.Join(got, " ")
	}
	for _, tc := range []struct{ user, plan, want string }{
		{"ut-a", "internal", "200 200 200 429 429"},
		{"ut-a", "platinum", "429 429 429 429 429"},
		{"ut-b", "platinum", "200 200 200 429 429"},
	} {
		if got := run(tc.user, tc.plan); got != tc.want {
			t.Errorf("%s, tier %s, Redis down, extra 3/minute: %s, want %s", tc.user, tc.plan, got, tc.want)
		}
	}
}
