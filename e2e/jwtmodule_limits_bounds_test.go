package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// jwtModuleManyLimitsPolicy: a tier with a limit for each of the five
// units and a route adding four more (nine limits in one bucket, more
// than the module's C spec holds: glue.MaxLimits), beside a route with
// the tier's limits alone.
const jwtModuleManyLimitsPolicy = `version: 1
auth:
{{.JWT}}
rateLimits:
  mode: quota
  tiers:
    tiny:
      - {requests: 100, per: second}
      - {requests: 1000, per: minute}
      - {requests: 10000, per: hour}
      - {requests: 100000, per: day}
      - {requests: 1000000, per: month}
  defaultTier: tiny
gateways:
  - name: a
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: few, match: {pathPrefix: /few}, backend: echo, auth: {methods: [jwt]}}
  - name: many
    match: {pathPrefix: /many}
    backend: echo
    auth: {methods: [jwt]}
    rateLimit:
      extra:
        - {requests: 50, per: second}
        - {requests: 500, per: minute}
        - {requests: 5000, per: hour}
        - {requests: 50000, per: day}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// TestJWTModuleLimitsMoreThanTheModuleHolds: a route whose bucket has
// more limits than the module's C spec holds is served (its limits on
// the filter path: xds/translator moduleHolds), and so is every other
// route. Before, the module refused such a route's configuration, so
// Envoy rejected the whole route configuration: every route of the
// gateway 404 (a running Envoy kept the previous policy's routes).
func TestJWTModuleLimitsMoreThanTheModuleHolds(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, jwtModuleManyLimitsPolicy, port), "--envoy-module", harness.BuildEnvoyModule(t))
	s.envoy("a", "jm-many", "delta")
	tok := bearer(n.idp.rs256("k1", with(n.idp.claims("many-1", "user"), "plan", "tiny")))
	ctx := testCtx(t, 20*time.Second)
	for _, path := range []string{"/few/x", "/many/x"} {
		var last string
		err := harness.WaitFor(ctx, func() (bool, error) {
			resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", port, path), "", tok)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = fmt.Sprint(resp.Status)
			return resp.Status == 200, nil
		})
		if err != nil {
			t.Errorf("%s never served: last %s", path, last)
		}
	}
}

// TestJWTModuleLimitsAdmittedAndDenied: on a route whose limits the
// module enforces, each admitted request reaches the upstream with the
// caller's identity headers and without its credential (the first one
// decided in Go, the others in C), and no refused request reaches it:
// each 429 is the module's, without the upstream's mark.
func TestJWTModuleLimitsAdmittedAndDenied(t *testing.T) {
	m := startModuleLimits(t, "open")
	tok := m.token("mid-1", "tiny")
	admitted, denied := 0, 0
	for i := range 14 {
		resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", m.port), "", tok)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Status {
		case 200:
			admitted++
			var echo struct{ Headers map[string]string }
			if err := resp.JSON(&echo); err != nil {
				t.Fatal(err)
			}
			h := echo.Headers
			if h["X-User-Id"] == "" || h["X-Consumer-Tier"] != "tiny" || h["Authorization"] != "" {
				t.Errorf("request %d admitted with headers %v: want the identity, no credential", i, h)
			}
		case 429:
			denied++
			if resp.Header.Get("X-Upstream") != "" {
				t.Errorf("request %d: a 429 from the upstream", i)
			}
		default:
			t.Fatalf("request %d: status %d %s", i, resp.Status, resp.Body)
		}
	}
	if admitted != 10 || denied != 4 {
		t.Fatalf("%d admitted, %d denied; want 10 and 4 (10/minute)", admitted, denied)
	}
	m.noExtAuthz(t)
}
