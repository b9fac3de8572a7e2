package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestDrainingConnectionKeepsECDSConfig: connections opened before a push
// that renames the gateway's ECDS-served filters (a JWT provider's clock
// skew renames jwt_authn's, and the module's when it decides the key
// routes) keep their filters' configs while the replaced listener drains.
// A valid token and a valid signed key sent on them after the push are
// admitted at once, though the IdP now answers its JWKS in 3 s. Before,
// the push removed the old names' resources and Envoy put each filter's
// default config back on the draining connections: jwt_authn with an
// empty JWKS cache (the request waited for a fetch, or was cut when the
// drain ended: the EOF of TestJWTNativeListenerUpdate's rare failures),
// the module refusing every signed key (503 key_store_unavailable).
func TestDrainingConnectionKeepsECDSConfig(t *testing.T) {
	eachJWTEngine(t, testDrainingConnectionKeepsECDSConfig)
}

func testDrainingConnectionKeepsECDSConfig(t *testing.T, engine jwtEngine) {
	n := startNativeEnv(t)
	port, second := harness.FreePort(t), harness.FreePort(t)
	policy := strings.Replace(n.policy(t, keyNativePolicy, port, second), "routes:\n",
		"routes:\n  - {name: users, match: {pathPrefix: /users}, backend: echo, auth: {methods: [jwt], roles: [user]}}\n", 1)
	s := n.stack(t, policy, engine.args(t)...)
	e := s.envoyWith("public", "ecds-drain", harness.EnvoyOptions{DrainTime: time.Minute})
	k := &keyStack{authStack: n.authStack(s, port), redis: n.redis, secondPort: second, proxy: e, policy: policy}
	k.waitKeyTable(t, port)
	key, _ := createKey(t, s, "drain", "pro")
	tok := bearer(n.idp.rs256("k1", n.idp.claims("alice", "user")))
	requests := []struct {
		path    string
		headers map[string]string
		conn    *keepAliveConn
	}{
		{"/users/1", tok, dialKeepAliveConn(t, port)},
		{"/keys/1", map[string]string{"x-api-key": key}, dialKeepAliveConn(t, port)},
	}
	for _, r := range requests {
		if resp := r.conn.get(t, r.path, r.headers); resp.StatusCode != 200 {
			t.Fatalf("GET %s before the push: %d", r.path, resp.StatusCode)
		}
	}
	n.idp.delay.Store(int64(3 * time.Second))
	pushReplacingListener(t, s, e, strings.Replace(policy, "algorithms: [RS256]", "algorithms: [RS256]\n      clockSkew: 20s", 1))
	for _, r := range requests {
		start := time.Now()
		resp := r.conn.get(t, r.path, r.headers)
		took := time.Since(start)
		t.Logf("GET %s on a connection of the replaced listener: %d in %s", r.path, resp.StatusCode, took.Round(time.Millisecond))
		if resp.StatusCode != 200 || took > time.Second {
			t.Errorf("GET %s on a draining connection: %d in %s, want 200 at once (the IdP answers in 3 s)",
				r.path, resp.StatusCode, took.Round(time.Millisecond))
		}
	}
}

// pushReplacingListener pushes policy (a change that replaces the
// listener) through s and waits until e has replaced its listener:
// listener_modified grew and no listener is warming.
func pushReplacingListener(t *testing.T, s *stack, e *harness.Envoy, policy string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	modified, _, err := e.Stat(ctx, "listener_manager.listener_modified")
	if err != nil {
		t.Fatal(err)
	}
	s.cli(0, "push", writeFile(t, "replacing.yaml", policy))
	if err := harness.WaitFor(ctx, func() (bool, error) {
		now, _, err := e.Stat(ctx, "listener_manager.listener_modified")
		warming, _, werr := e.Stat(ctx, "listener_manager.total_listeners_warming")
		return err == nil && werr == nil && now > modified && warming == 0, nil
	}); err != nil {
		t.Fatalf("the listener was not replaced: %v", err)
	}
}
