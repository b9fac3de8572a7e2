package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// twoGatewayPolicy has a public gateway (JWT, tier limits of 3 a minute)
// and an internal one (API keys, 100 a minute per consumer, no tier limits).
const twoGatewayPolicy = `version: 1
auth:
  jwt:
    - {name: corp, issuer: %q, audiences: [%q], jwksUri: %q, algorithms: [RS256], claims: {userId: sub, roles: roles, tier: plan}}
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    free: [{requests: 3, per: minute}]
    pro: [{requests: 3, per: minute}]
  defaultTier: free
gateways:
  - name: public
    listeners: [{name: public-http, port: %d, address: 127.0.0.1}]
  - name: internal
    listeners: [{name: internal-http, port: %d, address: 127.0.0.1}]
routes:
  - {name: public-api, gateway: public, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt], roles: [user]}}
  - name: internal-api
    gateway: internal
    match: {pathPrefix: /api}
    backend: echo
    auth: {methods: [apiKey], roles: [service]}
    rateLimit: {consumer: false, extra: [{requests: 100, per: minute}]}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestExternalAndInternalGateways serves two gateways from one policy: each
// Envoy fleet gets only its own listeners and routes, the public one takes
// JWTs under tier limits, the internal one API keys with higher limits.
func TestExternalAndInternalGateways(t *testing.T) {
	p := newIDP(t)
	up := harness.StartUpstream(t, "echo")
	rd := harness.StartRedis(t)
	ports := freePorts(t, 2)
	pub, internal := ports[0], ports[1]
	s := startStackWith(t, fmt.Sprintf(twoGatewayPolicy, idpIssuer, idpAudience, p.jwksURL(), pub, internal, up.Addr()),
		stackOptions{args: []string{"--redis", "redis://" + rd + "/0", "--key-pepper", haPepper}})
	ePub := s.envoy("public", "edge-0", "delta")
	eInt := s.envoy("internal", "mesh-0", "delta")
	ctx := testCtx(t, 30*time.Second)
	for _, c := range []struct {
		e         *harness.Envoy
		want, not string
	}{{ePub, "public-api", "internal-api"}, {eInt, "internal-api", "public-api"}} {
		dump, err := c.e.ConfigDump(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		d := string(dump)
		if !strings.Contains(d, c.want) || strings.Contains(d, c.not) || strings.Contains(d, strings.Replace(c.not, "-api", "-http", 1)) {
			t.Errorf("Envoy of %s: config has %s: %v, has %s or its listener: %v", c.want, c.want, strings.Contains(d, c.want), c.not, strings.Contains(d, c.not))
		}
	}
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(s.cli(0, "keys", "create", "--consumer", "billing", "--roles", "service", "-o", "json")), &created); err != nil {
		t.Fatal(err)
	}
	jwt := bearer(p.rs256("k1", p.claims("alice", "user")))
	key := map[string]string{"x-api-key": created.Key}
	client := harness.NewHTTPClient(false)
	defer client.Close()
	call := func(port int, h map[string]string) int {
		resp, err := client.Get(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/x", port), "", h)
		if err != nil {
			return 0
		}
		return resp.Status
	}
	var pubCodes, intCodes []int
	for range 4 {
		pubCodes = append(pubCodes, call(pub, jwt))
	}
	for range 10 {
		intCodes = append(intCodes, call(internal, key))
	}
	if fmt.Sprint(pubCodes) != "[200 200 200 429]" {
		t.Errorf("public gateway with a JWT: %v, want three 200 then 429 (tier limit 3/min)", pubCodes)
	}
	for i, c := range intCodes {
		if c != 200 {
			t.Errorf("internal gateway request %d with an API key: %d, want 200 (limit 100/min)", i+1, c)
		}
	}
	if c := call(pub, key); c != 401 {
		t.Errorf("public gateway with an API key: %d, want 401 (JWT only)", c)
	}
	if c := call(internal, jwt); c != 401 {
		t.Errorf("internal gateway with a JWT: %d, want 401 (API keys only)", c)
	}
}
