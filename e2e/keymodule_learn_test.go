package e2e

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
)

// TestKeyModuleLearnsOpaqueKeys: with the Envoy module deciding keys
// (quota mode), an opaque key costs one ext_authz Check, its first
// request's: the module learns the key's record from that answer
// (keys_learned) and decides the key's later requests itself, with the
// identity ext_authz gave (no Check, the native marker, forged identity
// headers overwritten). Its changes still reach every request within a
// second, through the exceptions table and with no Check: a tier update
// is applied, a revocation refuses the key with the service's 401.
func TestKeyModuleLearnsOpaqueKeys(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	key := createOpaqueKey(t, k, "learner", "pro")
	id, err := apikey.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"x-api-key": key, "x-user-id": "mallory", "x-consumer-tier": "unlimited"}
	checks, learned := k.authzChecks(t), moduleCounters(t, k.proxy)["keys_learned"]
	for i := range 20 {
		status, echo, body := k.call(t, "/keys/1", h)
		if status != 200 || echo == nil {
			t.Fatalf("request %d: %d %s", i+1, status, body)
		}
		if hdr(echo, "x-user-id") != "learner" || hdr(echo, "x-consumer-tier") != "pro" {
			t.Fatalf("request %d: upstream x-user-id %q tier %q; want learner pro", i+1, hdr(echo, "x-user-id"),
				hdr(echo, "x-consumer-tier"))
		}
	}
	byCheck := k.authzChecks(t) - checks
	t.Logf("20 requests of one opaque key: %d Check(s), keys_learned +%d", byCheck,
		moduleCounters(t, k.proxy)["keys_learned"]-learned)
	if byCheck != 1 || moduleCounters(t, k.proxy)["keys_learned"]-learned != 1 {
		t.Fatalf("%d Checks and %d keys learned for 20 requests, want 1 and 1",
			byCheck, moduleCounters(t, k.proxy)["keys_learned"]-learned)
	}

	checks = k.authzChecks(t)
	start := time.Now()
	k.cli(0, "keys", "update", id, "--tier", "tiny")
	waitUpstreamTier(t, k, key, "tiny")
	t.Logf("tier update → the learned key's requests carry tier tiny: %s", time.Since(start).Round(time.Millisecond))
	took := revokeAndWait(t, k, k.stack, id, key, time.Second)
	t.Logf("revocation → 401 revoked_key: %s", took.Round(time.Millisecond))
	if n := k.authzChecks(t) - checks; n != 0 {
		t.Errorf("%d Checks after the key was learned, want 0 (its changes come with the exceptions table)", n)
	}
}
