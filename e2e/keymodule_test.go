package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestKeyModuleLimitsOneAccount: with the Envoy module deciding signed keys
// and taking the route's limits (quota mode), the opaque keys it passes to
// ext_authz are limited in the Check, and both kinds of key of one
// consumer draw on one account in Redis: tier tiny (3 a day) is spent by
// two opaque keys' requests (exact, charged at once), then a signed key of
// the same consumer gets what is left (one request; the one admitted
// before its bucket's first assignment is the documented bound of quota
// mode, so at most two). Signed keys make no Check, opaque ones one each;
// every refusal is a 429 with Retry-After, from the module or from the
// Check.
func TestKeyModuleLimitsOneAccount(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	var created struct{ Key string }
	out := k.cli(0, "keys", "create", "--consumer", "shared", "--tier", "tiny", "-o", "json", "--format", "opaque")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
		t.Fatalf("keys create made no opaque key (%v): %s", err, out)
	}
	signed, _ := createKey(t, k.stack, "shared", "tiny")

	before := k.authzChecks(t)
	opaque := k.burst(t, created.Key, 2)
	checks := k.authzChecks(t) - before
	bySigned := k.burst(t, signed, 4)
	t.Logf("tier tiny (3/day): opaque keys %v (%d Checks), then the signed key %v (%d more Checks)",
		opaque, checks, bySigned, k.authzChecks(t)-before-checks)
	if opaque[200] != 2 || checks != 2 {
		t.Fatalf("opaque keys: %v with %d Checks, want 2×200 with 2", opaque, checks)
	}
	if bySigned[200] < 1 || bySigned[200] > 2 || bySigned[429] != 4-bySigned[200] {
		t.Fatalf("the signed key after the opaque ones: %v, want 1 (at most 2) admitted and the rest 429", bySigned)
	}
	if k.authzChecks(t) != before+checks {
		t.Errorf("signed keys made %d Checks, want 0", k.authzChecks(t)-before-checks)
	}
	more := k.burst(t, created.Key, 1)
	if more[429] != 1 {
		t.Errorf("an opaque key once the account is spent: %v, want 429", more)
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
