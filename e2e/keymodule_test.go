package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestKeyModuleLimitsOneAccount: with the Envoy module deciding signed keys
// and taking the route's limits (quota mode), the opaque keys it passes to
// ext_authz are limited in the Check, and both kinds of key of one
// consumer draw on one account in Redis. Tier tiny is 3 a day: a signed
// key's request (decided in the module, reported at once for its new
// bucket) is settled into Redis; then the consumer's opaque key gets
// exactly what is left (2 of 3 requests: the Check counts exactly). Signed
// keys make no Check, opaque ones one each; every refusal is a 429 with
// Retry-After, from the module or from the Check.
//
// Then the signed key again: the module still holds the grant its first
// report earned (what was left then, 2, given before the opaque requests
// were charged) and may spend it. The two paths meet in Redis, but the
// Check cannot see a grant the module has not spent yet: a consumer that
// uses both kinds of key at once can pass its limit by up to that grant
// until the module's next report (5 s), as two Envoys can in quota mode
// (docs/concepts/rate-limiting.md). The module alone never admits more
// than the limit.
func TestKeyModuleLimitsOneAccount(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	var created struct{ Key string }
	out := k.cli(0, "keys", "create", "--consumer", "shared", "--tier", "tiny", "-o", "json", "--format", "opaque")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
		t.Fatalf("keys create made no opaque key (%v): %s", err, out)
	}
	signed, _ := createKey(t, k.stack, "shared", "tiny")

	checks, settled := k.authzChecks(t), k.transformMetric(t, "tollgate_rlqs_settle_duration_seconds_count")
	first := k.burst(t, signed, 1)
	if err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		return k.transformMetric(t, "tollgate_rlqs_settle_duration_seconds_count") > settled, nil
	}); err != nil {
		t.Fatalf("the signed key's new bucket was never settled: %v", err)
	}
	opaque := k.burst(t, created.Key, 3)
	byCheck := k.authzChecks(t) - checks
	again := k.burst(t, signed, 3)
	t.Logf("tier tiny (3/day): signed key %v, settled; opaque key %v (%d Checks); signed key again %v",
		first, opaque, byCheck, again)
	if first[200] != 1 || opaque[200] != 2 || opaque[429] != 1 || byCheck != 3 {
		t.Fatalf("signed %v then opaque %v with %d Checks: want 1×200, then 2×200 and 1×429 with 3 Checks", first, opaque, byCheck)
	}
	if first[200]+again[200] > 3 || again[200] > 2 {
		t.Errorf("the module admitted %d requests of a 3-a-day limit, %d after its grant of at most 2",
			first[200]+again[200], again[200])
	}
	if k.authzChecks(t) != checks+byCheck {
		t.Errorf("signed keys made %d Checks, want 0", k.authzChecks(t)-checks-byCheck)
	}
}

// burst sends n requests with key, one after the other, and counts the
// answers by status; a 429 without Retry-After, or any status but 200 and
// 429, fails the test.
func (k *keyStack) burst(t *testing.T, key string, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for range n {
		resp := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": key})
		seen[resp.Status]++
		switch {
		case resp.Status == 429 && resp.Header.Get("Retry-After") == "":
			t.Errorf("a 429 without Retry-After: %s", resp.Body)
		case resp.Status != 200 && resp.Status != 429:
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
	}
	return seen
}
