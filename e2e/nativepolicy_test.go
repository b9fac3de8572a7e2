package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// corpProviderTemplate is the JWT provider of the native-path tests: the
// test IdP (idp_test.go) as provider corp, RS256, with the claims mapping
// every one of them reads identities from.
const corpProviderTemplate = `  jwt:
    - name: corp
      issuer: %q
      audiences: [%q]
      jwksUri: %q
      algorithms: [RS256]
      claims: {userId: sub, roles: roles, tenant: tid, tier: plan}`

// nativeEnv is what the native-path tests (jwtnative, apikeynative,
// mixednative, accesslog_identity) start before their control plane: the
// test IdP, an echo upstream and a Redis holding the seeded key-store
// epoch (so that hand-signed keys, keyClaims, carry the current one).
type nativeEnv struct {
	idp      *idp
	upstream *upstream.Server
	redis    *redisServer
}

// startNativeEnv starts the IdP, the upstream and the Redis of a
// native-path test.
func startNativeEnv(t *testing.T) nativeEnv {
	t.Helper()
	n := nativeEnv{idp: newIDP(t), upstream: harness.StartUpstream(t, "echo"), redis: startRedisServer(t, harness.FreePort(t))}
	seedKeyEpoch(t, n.redis.addr)
	return n
}

// policyVars are the fields of a native-path policy template: JWT is the
// provider block (under auth:), Port and Second the listener ports of the
// gateways, Upstream the echo upstream's address, quoted.
type policyVars struct {
	JWT          string
	Port, Second int
	Upstream     string
}

// policy renders tmpl (text/template over policyVars) with n's provider
// and upstream and the listener ports (the first is Port, the second
// Second).
func (n nativeEnv) policy(t *testing.T, tmpl string, ports ...int) string {
	t.Helper()
	v := policyVars{JWT: fmt.Sprintf(corpProviderTemplate, idpIssuer, idpAudience, n.idp.jwksURL()),
		Upstream: strconv.Quote(n.upstream.Addr())}
	if len(ports) > 0 {
		v.Port = ports[0]
	}
	if len(ports) > 1 {
		v.Second = ports[1]
	}
	var b strings.Builder
	if err := template.Must(template.New("policy").Option("missingkey=error").Parse(tmpl)).Execute(&b, v); err != nil {
		t.Fatalf("render the policy: %v", err)
	}
	return b.String()
}

// stack starts a control plane serving policy with n's Redis as key
// store and rate-limit backend and the key pepper keyPepper; extra are
// more serve flags.
func (n nativeEnv) stack(t *testing.T, policy string, extra ...string) *stack {
	t.Helper()
	args := append([]string{"--redis", "redis://" + n.redis.addr + "/0", "--key-pepper", keyPepper}, extra...)
	return startStackWith(t, policy, stackOptions{args: args})
}

// authStack returns the authStack of s, whose Envoy listens on port.
func (n nativeEnv) authStack(s *stack, port int) *authStack {
	return &authStack{stack: s, idp: n.idp, redis: n.redis.addr, port: port, client: harness.NewHTTPClient(false)}
}
