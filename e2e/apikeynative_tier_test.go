package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestAPIKeyNativeUnknownTier: a signed key whose tier the policy does not
// define — removed from the policy after the key was issued, or never in
// it — is treated as ext_authz treats an opaque key of that tier (the
// documented rule: "defaultTier: for consumers without a tier or with an
// unknown one"): admitted, limited as the default tier (counted apart from
// its old tier's counter), its own tier name in the tier header, the same
// 429 body naming the default tier.
func TestAPIKeyNativeUnknownTier(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeUnknownTier) }

func testAPIKeyNativeUnknownTier(t *testing.T, engine jwtEngine) {
	withGold := func(p string) string {
		p = strings.Replace(p, "tiny: [{requests: 3, per: day}]\n", "tiny: [{requests: 3, per: day}]\n    gold: [{requests: 1000, per: minute}]\n", 1)
		// Exact mode: the refusals compared are the rate-limit service's
		// (quota mode's unknown tiers: TestQuotaUnknownTierIsBounded).
		return strings.Replace(p, "defaultTier: pro", "defaultTier: tiny\n  mode: exact", 1)
	}
	k := startKeyNativeStackEngine(t, engine, withGold)
	k.waitKeyTable(t, k.port)
	keys := map[string]string{ // name -> key
		"signed gold": createFormatKey(t, k, "u-signed", "t1", "signed", "gold"),
		"opaque gold": createFormatKey(t, k, "u-opaque", "t1", "opaque", "gold"),
	}
	for name, key := range keys {
		if got := keyRun(t, k, key, 1); got != "200 gold" {
			t.Fatalf("%s key while gold is defined: %s", name, got)
		}
	}
	removed := strings.Replace(k.policy, "    gold: [{requests: 1000, per: minute}]\n", "", 1)
	k.cli(0, "push", writeFile(t, "removed.yaml", removed))
	k.waitSynced("key-native-0")
	keys["signed, tier never defined"] = signedKey(t, keyClaims("u-never", "nevertr1", "platinum"))
	want := "200 gold, 200 gold, 200 gold, 429 " + limited // the default tier tiny (3/day), counted apart from gold
	got := map[string]string{}
	for name, key := range keys {
		got[name] = keyRun(t, k, key, 4)
	}
	t.Logf("after gold was removed: %v", got)
	if got["signed gold"] != want || got["opaque gold"] != want {
		t.Errorf("gold removed: signed key %q, opaque key (ext_authz) %q, want both %q", got["signed gold"], got["opaque gold"], want)
	}
	if never := "200 platinum, 200 platinum, 200 platinum, 429 " + limited; got["signed, tier never defined"] != never {
		t.Errorf("tier never defined: %q, want %q", got["signed, tier never defined"], never)
	}
}

// limited is the body of a request over the default tier's limit, without
// its retryAfter.
const limited = `{"error":"rate_limited","limit":"tiny"}`

// keyRun sends n requests with key and returns each answer's status,
// with the upstream's tier header when it reached the upstream, else the
// body.
func keyRun(t *testing.T, k *keyStack, key string, n int) string {
	t.Helper()
	retryAfter := regexp.MustCompile(`,"retryAfter":\d+`)
	var out []string
	for range n {
		code, echo, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key})
		if echo != nil {
			out = append(out, fmt.Sprintf("%d %s", code, hdr(echo, "x-consumer-tier")))
		} else {
			out = append(out, fmt.Sprintf("%d %s", code, retryAfter.ReplaceAllString(body, "")))
		}
	}
	return strings.Join(out, ", ")
}

// TestAPIKeyNativeQuotaByConsumer: in quota mode a signed key on an
// API-key-only route spends its own consumer's bucket of its own tier:
// the bucket's consumer and tier come from the identity metadata filter's
// copy of the headers the key identity script set, never from the
// client's. Two consumers of tier tiny (3/day) get 3 each, although every
// request of the first names the second in x-user-id and claims tier pro,
// and the upstream sees the key's identity.
func TestAPIKeyNativeQuotaByConsumer(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeQuotaByConsumer) }

func testAPIKeyNativeQuotaByConsumer(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	forged := map[string]string{"X-User-ID": "quota-b", "X-Consumer-Tier": "pro", "X-Tenant-ID": "evil"}
	run := func(consumer, jti string) string {
		h := map[string]string{"x-api-key": signedKey(t, keyClaims(consumer, jti, "tiny"))}
		for name, v := range forged {
			h[name] = v
		}
		var out []string
		for range 4 {
			code, echo, _ := k.call(t, "/keys/1", h)
			if echo != nil {
				out = append(out, fmt.Sprintf("%d %s/%s/%s", code, hdr(echo, "x-user-id"), hdr(echo, "x-consumer-tier"), hdr(echo, "x-tenant-id")))
			} else {
				out = append(out, fmt.Sprint(code))
			}
		}
		return strings.Join(out, ", ")
	}
	for _, c := range []struct{ consumer, jti string }{{"quota-a", "quotaka1"}, {"quota-b", "quotakb1"}} {
		want := strings.Repeat("200 "+c.consumer+"/tiny/t1, ", 3) + "429"
		if got := run(c.consumer, c.jti); got != want {
			t.Errorf("%s (tiny, 3/day) with forged identity headers: %s, want %s", c.consumer, got, want)
		}
	}
}

// TestAPIKeyNativeDefaultPathMakesNoCall: on the default policy path (no
// rateLimits.mode: quota) a signed key's tier limit holds with no call per
// request: neither ext_authz nor the rate-limit service is asked.
func TestAPIKeyNativeDefaultPathMakesNoCall(t *testing.T) {
	eachJWTEngine(t, testAPIKeyNativeDefaultPathMakesNoCall)
}

func testAPIKeyNativeDefaultPathMakesNoCall(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, func(p string) string { return p })
	k.waitKeyTable(t, k.port)
	key, _ := createKey(t, k.stack, "u-default", "tiny")
	checks, decisions := k.authzChecks(t), k.rateLimitDecisions(t)
	codes := make([]int, 0, 5)
	for range 5 {
		code, _, _ := k.call(t, "/keys/1", map[string]string{"x-api-key": key})
		codes = append(codes, code)
	}
	if want := []int{200, 200, 200, 429, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("tiny tier (3/day) over 5 requests: %v, want %v", codes, want)
	}
	if n := k.authzChecks(t) - checks; n != 0 {
		t.Errorf("ext_authz served %d Check calls, want 0", n)
	}
	if n := k.rateLimitDecisions(t) - decisions; n != 0 {
		t.Errorf("the rate-limit service took %d decisions, want 0", n)
	}
}
