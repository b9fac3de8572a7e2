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
// ext_authz are charged after the Check by the module's charger, to the
// same bucket (route, tier, consumer) as the consumer's signed keys, in
// the module's one bucket table: one Envoy holds a consumer that mixes
// both kinds of key to its limit exactly, as it holds one that uses one
// kind. Tier tiny is 3 a day: a signed key's request (decided in the
// module, reported at once for its new bucket, settled into Redis), then
// the consumer's opaque key gets exactly what is left (2 of 3 requests),
// then the signed key gets nothing. Before the charger, the opaque keys
// were limited inside the Check (exact, in Redis), which could not see
// the grant the module held: the signed key passed the limit by that
// grant (2 more). Signed keys make no Check, the opaque key one (its
// first request: the module learns its record from that answer and
// decides, and charges, the next ones itself); the Check takes no limit
// (tollgate_ratelimit_decisions_total does not move); every refusal is a
// 429 with Retry-After.
func TestKeyModuleLimitsOneAccount(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	opaqueKey := createOpaqueKey(t, k, "shared", "tiny")
	signed, _ := createKey(t, k.stack, "shared", "tiny")

	checks, settled := k.authzChecks(t), k.transformMetric(t, "tollgate_rlqs_settle_duration_seconds_count")
	decisions := k.transformMetric(t, "tollgate_ratelimit_decisions_total")
	first := k.burst(t, signed, 1)
	if err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		return k.transformMetric(t, "tollgate_rlqs_settle_duration_seconds_count") > settled, nil
	}); err != nil {
		t.Fatalf("the signed key's new bucket was never settled: %v", err)
	}
	opaque := k.burst(t, opaqueKey, 3)
	byCheck := k.authzChecks(t) - checks
	again := k.burst(t, signed, 3)
	t.Logf("tier tiny (3/day): signed key %v, settled; opaque key %v (%d Checks); signed key again %v",
		first, opaque, byCheck, again)
	if first[200] != 1 || opaque[200] != 2 || opaque[429] != 1 || byCheck != 1 {
		t.Fatalf("signed %v then opaque %v with %d Checks: want 1×200, then 2×200 and 1×429 with 1 Check", first, opaque, byCheck)
	}
	if again[200] != 0 {
		t.Errorf("the signed key was admitted %d more times after its consumer's 3 of a 3-a-day limit", again[200])
	}
	if k.authzChecks(t) != checks+byCheck {
		t.Errorf("signed keys made %d Checks, want 0", k.authzChecks(t)-checks-byCheck)
	}
	if d := k.transformMetric(t, "tollgate_ratelimit_decisions_total") - decisions; d != 0 {
		t.Errorf("the Check took %d rate-limit decisions, want 0 (the charger takes the limits)", d)
	}
}

// createOpaqueKey creates an opaque key ("tg_…") of consumer in tier.
func createOpaqueKey(t *testing.T, k *keyStack, consumer, tier string) string {
	t.Helper()
	var created struct{ Key string }
	out := k.cli(0, "keys", "create", "--consumer", consumer, "--tier", tier, "-o", "json", "--format", "opaque")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
		t.Fatalf("keys create made no opaque key (%v): %s", err, out)
	}
	return created.Key
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
