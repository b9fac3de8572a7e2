package e2e

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestKeyNativeRevokeWhileIdPHangs: a signed key's revocation reaches
// Envoy within a second (TestAPIKeyNativeExceptions) whatever the JWT
// IdP does: the exceptions table has nothing to do with a JWT provider's
// JWKS. Here the IdP hangs (every JWKS answer waits 30 s) from before
// Envoy's start, so no JWKS was ever fetched. With the module, each
// exceptions push builds a new filter configuration on Envoy's main
// thread, which waits for the remote JWKS (jwksWarmup, 6 s) before it is
// applied: the old configuration, missing the revocation, serves
// meanwhile.
func TestKeyNativeRevokeWhileIdPHangs(t *testing.T) {
	eachJWTEngine(t, testKeyNativeRevokeWhileIdPHangs)
}

func testKeyNativeRevokeWhileIdPHangs(t *testing.T, engine jwtEngine) {
	n := startNativeEnv(t)
	n.idp.delay.Store(int64(30 * time.Second))
	port, second := harness.FreePort(t), harness.FreePort(t)
	policy := exactMode(n.policy(t, keyNativePolicy, port, second))
	s := n.stack(t, policy, engine.args(t)...)
	e := s.envoy("public", "key-idp-hangs", "delta")
	k := &keyStack{authStack: n.authStack(s, port), redis: n.redis, secondPort: second, proxy: e, policy: policy}
	key, id := createKey(t, k.stack, "hung", "pro")
	waitKeyStatus(t, k, k.port, key, 200, "", 20*time.Second)
	time.Sleep(time.Second) // the pushes of the key's creation are applied
	took := revokeAndWait(t, k, k.stack, id, key, 15*time.Second)
	t.Logf("revoked key refused %s after the revocation", took.Round(time.Millisecond))
	if took > 1500*time.Millisecond {
		t.Errorf("the revocation took %s to reach Envoy while the IdP hangs, want about a second at most", took.Round(time.Millisecond))
	}
}
