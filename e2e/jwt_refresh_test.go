package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// jwtRefreshPolicy is jwtNativePolicy's /users route (decided in Envoy:
// jwt_authn, or the module with --envoy-module) beside the same
// requirement on /authz, which a no-op Lua script keeps on the ext_authz
// service. The provider's jwksRefresh is set by withJWKSRefresh. No rate
// limits: only the credential is under test.
const jwtRefreshPolicy = `version: 1
auth:
{{.JWT}}
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - {name: users, match: {pathPrefix: /users}, backend: echo, auth: {methods: [jwt], roles: [user]}}
  - name: authz
    match: {pathPrefix: /authz}
    backend: echo
    auth: {methods: [jwt], roles: [user]}
    lua: |
      function envoy_on_request(h) end
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// testJWKSRefresh is the provider's jwksRefresh in these tests: the
// policy's least (a real setting, not a test hook: the default is 30 s).
const testJWKSRefresh = 5 * time.Second

// refreshBound is the longest a test lets a cached token of a withdrawn
// key stay admitted: one jwksRefresh, the fetch, jwt_authn's push and
// refetch, and room for a loaded machine.
const refreshBound = testJWKSRefresh + 5*time.Second

// withJWKSRefresh sets the corp provider's jwksRefresh in a policy of
// nativeEnv.policy.
func withJWKSRefresh(policy string, d time.Duration) string {
	out := strings.Replace(policy, "      algorithms: [RS256]\n", "      algorithms: [RS256]\n      jwksRefresh: "+d.String()+"\n", 1)
	if out == policy {
		panic("withJWKSRefresh: no provider to set jwksRefresh on")
	}
	return out
}

// TestJWTWithdrawnKeyRefresh: the policy's jwksRefresh bounds, on every
// path, how long a token signed with a key the IdP withdrew from its JWKS
// stays admitted after it was verified and cached: a k2 token admitted
// twice (the second time from the cache: jwt_authn's, the module's C
// table, the ext_authz service's verification cache) is refused within
// refreshBound of k2 leaving the JWKS, by the background refresh alone (no
// token naming an unknown kid asks for an early fetch), while a k1 token
// is still admitted. jwt_authn: the control plane's JWKS watch at the
// provider's interval (no test interval set), then a new JWKS epoch;
// module: the module's own refresh clears its table; ext_authz: the
// service's refresh purges its cache. The IdP's JWKS fetch rate is logged.
// With the module, the refreshes of the unchanged JWKS before the
// withdrawal are 304 Not Modified (checkRevalidated), and the withdrawal,
// a new body with a new ETag, is still seen within refreshBound.
func TestJWTWithdrawnKeyRefresh(t *testing.T) {
	t.Run("jwt_authn and ext_authz", func(t *testing.T) {
		t.Parallel()
		testJWTWithdrawnKeyRefresh(t, jwtEngines[0], map[string]string{"jwt_authn": "/users/1", "ext_authz": "/authz/1"})
	})
	t.Run("module", func(t *testing.T) {
		t.Parallel()
		testJWTWithdrawnKeyRefresh(t, jwtEngines[1], map[string]string{"module": "/users/1"})
	})
}

func testJWTWithdrawnKeyRefresh(t *testing.T, engine jwtEngine, paths map[string]string) {
	n := startNativeEnv(t)
	n.idp.addKey("k2")
	port := harness.FreePort(t)
	s := n.stack(t, withJWKSRefresh(n.policy(t, jwtRefreshPolicy, port), testJWKSRefresh), engine.args(t)...)
	e := s.envoy("public", "jwt-refresh-"+engine.name, "delta")
	a := n.authStack(s, port)
	k2 := bearer(n.idp.rs256("k2", n.idp.claims("alice", "user")))
	hits := jwtCacheHits(t, s)
	for path, route := range paths {
		for i := range 2 { // the second from the path's cache
			if code, _, body := a.call(t, route, k2); code != 200 {
				t.Fatalf("%s: request %d with k2: %d %s", path, i+1, code, body)
			}
		}
	}
	if _, viaAuthz := paths["ext_authz"]; viaAuthz && jwtCacheHits(t, s) == hits {
		t.Fatal("ext_authz: the k2 token's second request was not a verification cache hit")
	}
	if _, module := paths["module"]; module {
		if c := moduleCounters(t, e); c["rq_table_allowed"] != 1 {
			t.Fatalf("module: the k2 token's second request was not served by the C table: %v", c)
		}
	}
	if _, module := paths["module"]; module {
		checkRevalidated(t, n.idp)
	}
	fetches, full, withdrawn := n.idp.fetches.Load(), n.idp.full.Load(), time.Now()
	n.idp.mu.Lock()
	delete(n.idp.keys, "k2")
	n.idp.mu.Unlock()
	refused := map[string]time.Duration{}
	for len(refused) < len(paths) && time.Since(withdrawn) < refreshBound {
		time.Sleep(100 * time.Millisecond)
		for path, route := range paths {
			if _, done := refused[path]; done {
				continue
			}
			code, _, body := a.call(t, route, k2)
			switch {
			case code == 401 && (path == "jwt_authn" || strings.Contains(body, `"reason":"unknown_kid"`)):
				refused[path] = time.Since(withdrawn)
			case code != 200:
				t.Fatalf("%s: k2 token %s after the withdrawal: %d %s, want 200 or 401 unknown_kid", path, time.Since(withdrawn), code, body)
			}
		}
	}
	took := time.Since(withdrawn)
	for path := range paths {
		d, ok := refused[path]
		if !ok {
			t.Errorf("%s: the cached token of the withdrawn key k2 still admitted %s after the withdrawal (jwksRefresh %s)",
				path, took.Round(time.Millisecond), testJWKSRefresh)
			continue
		}
		t.Logf("%s: k2 token refused %s after k2 left the JWKS (jwksRefresh %s)", path, d.Round(time.Millisecond), testJWKSRefresh)
	}
	t.Logf("IdP: %d JWKS fetches (%d of them 200s, the others 304s) in the %s after the withdrawal (every fetcher of the stack, at jwksRefresh %s)",
		n.idp.fetches.Load()-fetches, n.idp.full.Load()-full, took.Round(time.Millisecond), testJWKSRefresh)
	k1 := bearer(n.idp.rs256("k1", n.idp.claims("bob", "user")))
	for path, route := range paths {
		if code, _, body := a.call(t, route, k1); code != 200 {
			t.Errorf("%s: a k1 token after k2's withdrawal: %d %s, want 200", path, code, body)
		}
	}
}

// checkRevalidated watches the IdP for a full jwksRefresh (and a margin)
// while its JWKS does not change: every fetcher of the stack (the Envoy
// module's verifier and the ext_authz service's, each refreshing every
// testJWKSRefresh) revalidates it, so the IdP answers at least two 304s
// and not one 200. A fetcher that downloaded the JWKS unconditionally
// would be a 200 within that window.
func checkRevalidated(t *testing.T, p *idp) {
	t.Helper()
	full, notMod, start := p.full.Load(), p.notMod.Load(), time.Now()
	window := testJWKSRefresh + time.Second
	for time.Since(start) < window || p.notMod.Load()-notMod < 2 {
		if time.Since(start) > refreshBound {
			t.Fatalf("IdP: %d 304s in %s of an unchanged JWKS, want at least 2 (one per fetcher)", p.notMod.Load()-notMod, refreshBound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start).Round(time.Millisecond)
	if n := p.full.Load() - full; n != 0 {
		t.Fatalf("IdP: %d 200s (full downloads) in %s of an unchanged JWKS, want none: every refresh revalidates", n, took)
	}
	t.Logf("IdP: %d 304s and no 200 in %s of an unchanged JWKS (jwksRefresh %s)", p.notMod.Load()-notMod, took, testJWKSRefresh)
}

// jwtCacheHits is the ext_authz service's JWT verification cache hits.
func jwtCacheHits(t *testing.T, s *stack) int {
	t.Helper()
	resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), "http://"+s.adminAddr+"/metrics", "", map[string]string{"Authorization": "Bearer " + testToken})
	if err != nil || resp.Status != 200 {
		t.Fatalf("GET /metrics: %v %v", err, resp)
	}
	m := regexp.MustCompile(`(?m)^tollgate_authz_jwt_cache_total\{result="hit"\} (\d+)$`).FindSubmatch(resp.Body)
	if m == nil {
		return 0
	}
	hits, _ := strconv.Atoi(string(m[1]))
	return hits
}
