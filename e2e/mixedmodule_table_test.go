package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestMixedModuleTableAcrossRevocation: with the Envoy module, a
// revocation (a new exceptions table over ECDS, a new filter configuration)
// keeps the module's verified credentials it does not affect: a JWT and a
// signed key served from the C table before it are served from it right
// after (rq_table_allowed counts them, rq_go_allowed does not), while the
// revoked key, cached as well, is refused 401 revoked_key.
func TestMixedModuleTableAcrossRevocation(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	s := n.stack(t, withMode(n.policy(t, mixedNativePolicy, port), "exact"), jwtEngines[1].args(t)...)
	e := s.envoy("public", "mixed-module-table", "delta")
	a := n.authStack(s, port)
	kept, _ := createKey(t, s, "kept", "pro")
	victim, id := createKey(t, s, "victim", "pro")
	jwt := bearer(a.idp.rs256("k1", a.idp.claims("alice", "user")))
	waitMixed(t, a, map[string]string{"x-api-key": victim}, 200, "") // the module holds the key store's table
	for range 2 {                                                    // the second from the C table
		for _, h := range []map[string]string{jwt, {"x-api-key": kept}, {"x-api-key": victim}} {
			if code, _, body := a.call(t, "/m/1", h); code != 200 {
				t.Fatalf("before the revocation: %d %s", code, body)
			}
		}
	}
	s.cli(0, "keys", "revoke", id)
	took := waitMixed(t, a, map[string]string{"x-api-key": victim}, 401, revokedKeyBody)
	before := moduleCounters(t, e)
	for _, h := range []map[string]string{jwt, {"x-api-key": kept}} {
		if code, _, body := a.call(t, "/m/1", h); code != 200 {
			t.Fatalf("after the revocation: %d %s", code, body)
		}
	}
	after := moduleCounters(t, e)
	t.Logf("revocation → 401 in %s; then the JWT and the other key: table %d → %d, Go %d → %d",
		took.Round(time.Millisecond), before["rq_table_allowed"], after["rq_table_allowed"], before["rq_go_allowed"],
		after["rq_go_allowed"])
	if after["rq_table_allowed"] != before["rq_table_allowed"]+2 || after["rq_go_allowed"] != before["rq_go_allowed"] {
		t.Errorf("after the revocation the JWT and the unaffected key were not both served from the C table: "+
			"before %v, after %v", before, after)
	}
	if code, _, body := a.call(t, "/m/1", map[string]string{"x-api-key": victim}); code != 401 ||
		!strings.Contains(body, "revoked_key") {
		t.Errorf("the revoked key again: %d %s, want 401 revoked_key", code, body)
	}
}

// waitMixed polls the mixed route with h until it answers status (and
// body, when not empty), for 10 s at most; it returns how long it took.
func waitMixed(t *testing.T, a *authStack, h map[string]string, status int, body string) time.Duration {
	t.Helper()
	start := time.Now()
	var code int
	var got string
	if err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		code, _, got = a.call(t, "/m/1", h)
		return code == status && (body == "" || got == body), nil
	}); err != nil {
		t.Fatalf("no %d %s within 10 s: last %d %s", status, body, code, got)
	}
	return time.Since(start)
}
