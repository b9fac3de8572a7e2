package e2e

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestKeyModuleOpaqueKeyLimited: with the Envoy module deciding signed
// keys and taking the route's limits (quota mode), an opaque key (passed
// by the module, decided by ext_authz) is limited by the module's charger
// after ext_authz, to the bucket of the identity ext_authz verified:
//   - tier tiny (3 a day): 3 admitted with the module's X-RateLimit-*
//     (3/2/0, 3/1/0, 3/0/…), the 4th refused with the bucket's 429
//     (Retry-After, X-RateLimit-*), though every request carries forged
//     identity headers naming another consumer and tier, the native
//     marker and metadata-looking headers;
//   - the consumer those headers name keeps its own 3: the bucket is the
//     verified key's, never the client's say;
//   - a signed key of a third consumer is decided and charged by the
//     first instance only: its 3 are admitted (a second charge by the
//     charger would refuse the 2nd), the charger counts none of them;
//   - the Check takes no limit (tollgate_ratelimit_decisions_total does
//     not move); each opaque key costs one Check, its first request's:
//     the module learns the key's record from that answer and decides
//     (and charges) its later requests itself, so the charger counts the
//     first request of each key only.
func TestKeyModuleOpaqueKeyLimited(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	victim, other := createOpaqueKey(t, k, "opaque-a", "tiny"), createOpaqueKey(t, k, "opaque-b", "tiny")
	signed, _ := createKey(t, k.stack, "signed-c", "tiny")
	forged := map[string]string{"x-user-id": "opaque-b", "x-consumer-tier": "pro", "x-tenant-id": "t9",
		"x-user-roles": "admin", "native": "apiKey", "x-md-native": "apiKey", "consumer": "opaque-b", "tier": "pro",
		"x-tollgate-consumer": "opaque-b", "x-tollgate-client-ip": "10.9.9.9", "x-envoy-dynamic-metadata": `{"native":"apiKey"}`}
	checks, decisions := k.authzChecks(t), k.transformMetric(t, "tollgate_ratelimit_decisions_total")
	charged := k.chargerStats(t)

	k.wantLimited(t, victim, forged, "opaque key with forged identity headers")
	k.wantLimited(t, other, nil, "the consumer the forged headers named")
	if d := k.chargerStats(t); d[0]-charged[0] != 2 || d[1]-charged[1] != 0 {
		t.Errorf("the charger counted %d admitted and %d refused, want 2 and 0 (each key's first request)",
			d[0]-charged[0], d[1]-charged[1])
	}
	before := k.chargerStats(t)
	k.wantLimited(t, signed, nil, "a signed key (the first instance charges it)")
	if after := k.chargerStats(t); after != before {
		t.Errorf("the charger charged signed keys: %v → %v", before, after)
	}
	if n := k.authzChecks(t) - checks; n != 2 {
		t.Errorf("%d Checks, want 2 (one per opaque key, learned from it; none for signed keys)", n)
	}
	if d := k.transformMetric(t, "tollgate_ratelimit_decisions_total") - decisions; d != 0 {
		t.Errorf("the Check took %d rate-limit decisions, want 0", d)
	}
}

// wantLimited sends key (with extra headers) to /keys 4 times against tier
// tiny (3 a day): 3 admitted with X-RateLimit-Limit 3 and Remaining 2, 1,
// 0, then the bucket's 429 with Retry-After and X-RateLimit-Remaining 0.
func (k *keyStack) wantLimited(t *testing.T, key string, extra map[string]string, what string) {
	t.Helper()
	h := map[string]string{"x-api-key": key}
	maps.Copy(h, extra)
	for i := range 3 {
		resp := k.get(t, k.port, "/keys/1", h)
		limit, remaining := resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining")
		if resp.Status != 200 || limit != "3" || remaining != strconv.Itoa(2-i) {
			t.Fatalf("%s: request %d: %d, X-RateLimit-Limit %q Remaining %q, want 200, 3, %d: %s",
				what, i+1, resp.Status, limit, remaining, 2-i, resp.Body)
		}
	}
	resp := k.get(t, k.port, "/keys/1", h)
	if resp.Status != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		!strings.Contains(string(resp.Body), "rate_limited") {
		t.Fatalf("%s: request 4: %d (Retry-After %q, X-RateLimit-Remaining %q) %s, want the bucket's 429",
			what, resp.Status, resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Remaining"), resp.Body)
	}
}

// chargerStats reads the charger's counters (rq_charged_allowed,
// rq_charged_rate_limited) from the stack's Envoy.
func (k *keyStack) chargerStats(t *testing.T) [2]int64 {
	t.Helper()
	var out [2]int64
	for i, n := range []string{"rq_charged_allowed", "rq_charged_rate_limited"} {
		v, _, err := k.proxy.Stat(testCtx(t, 10*time.Second), moduleStatPrefix+n)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// TestKeyModuleChargerDrainingConnection: the push that first gives a
// gateway the module's charger (here rateLimits.mode exact → quota)
// replaces the listener, and a connection opened before it drains on the
// old filter chain, which has no charger. It is not left unlimited: a
// route configuration is named after its listener's filters
// (translator.bindRouteConfig), so the draining connection keeps the old
// route table, whose Check still takes the opaque keys' limits exactly.
// An opaque key of 3 a day used once before the push gets 2 more on the
// draining connection, then 429; had the old chain taken the new routes
// (no limit in the Check, no charger), every request there would pass
// until the drain ended.
func TestKeyModuleChargerDrainingConnection(t *testing.T) {
	n := startNativeEnv(t)
	port, second := harness.FreePort(t), harness.FreePort(t)
	policy := withMode(n.policy(t, keyNativePolicy, port, second), "exact")
	s := n.stack(t, policy, jwtEngines[1].args(t)...)
	e := s.envoyWith("public", "charger-drain", harness.EnvoyOptions{DrainTime: time.Minute})
	k := &keyStack{authStack: n.authStack(s, port), redis: n.redis, secondPort: second, proxy: e, policy: policy}
	k.waitKeyTable(t, port)
	key := map[string]string{"x-api-key": createOpaqueKey(t, k, "drain-opaque", "tiny")}
	conn := dialKeepAliveConn(t, port)
	if resp := conn.get(t, "/keys/1", key); resp.StatusCode != 200 {
		t.Fatalf("before the push: %d", resp.StatusCode)
	}
	pushReplacingListener(t, s, e, strings.Replace(policy, "mode: exact", "mode: quota", 1))
	var got []int
	for i := range 4 {
		resp := conn.get(t, "/keys/1", key)
		got = append(got, resp.StatusCode)
		if i == 0 && resp.Header.Get("RateLimit-Policy") == "" { // the Check's exact answer, not the charger's
			t.Errorf("the draining connection's first answer has no RateLimit-Policy (the Check's): %v", resp.Header)
		}
	}
	t.Logf("opaque key of 3 a day, 1 used before the push, on a draining connection: %v", got)
	if fmt.Sprint(got) != fmt.Sprint([]int{200, 200, 429, 429}) {
		t.Errorf("on the draining connection: %v, want 2 more admitted then 429", got)
	}
}

// TestKeyModuleOpaqueKeyUnknownTier: an opaque key whose tier the policy
// no longer defines (removed after the key was issued) is never unbucketed
// by the charger: ext_authz admits it with its own tier name, the charger
// finds no bucket of that tier on the route and charges the default tier's
// (tiny, 3 a day), as the module does for a signed key and the filter
// path for any key: 3 admitted, then tiny's 429.
func TestKeyModuleOpaqueKeyUnknownTier(t *testing.T) {
	withGold := func(p string) string {
		p = strings.Replace(p, "tiny: [{requests: 3, per: day}]\n", "tiny: [{requests: 3, per: day}]\n    gold: [{requests: 1000, per: minute}]\n", 1)
		return withMode(strings.Replace(p, "defaultTier: pro", "defaultTier: tiny", 1), "quota")
	}
	k := startKeyNativeStackEngine(t, jwtEngines[1], withGold)
	k.waitKeyTable(t, k.port)
	key := createFormatKey(t, k, "u-opaque-unknown", "t1", "opaque", "gold")
	if got := keyRun(t, k, key, 1); got != "200 gold" {
		t.Fatalf("opaque key while gold is defined: %s", got)
	}
	k.cli(0, "push", writeFile(t, "removed.yaml", strings.Replace(k.policy, "    gold: [{requests: 1000, per: minute}]\n", "", 1)))
	k.waitSynced("key-native-0")
	got := keyRun(t, k, key, 4)
	t.Logf("after gold was removed: %s", got)
	if want := "200 gold, 200 gold, 200 gold, 429 " + limited; got != want {
		t.Errorf("gold removed: %q, want %q", got, want)
	}
}

// TestKeyModuleChargerClientIPHeader: on a gateway whose opaque keys the
// charger limits (no Check takes limits, so the edge no longer sets
// x-tollgate-client-ip), a client's copy of that internal header never
// reaches the upstream, with an opaque key (decided by ext_authz, which
// no longer sees it) as with a signed key (the module removes it). Before,
// the opaque key's request carried the client's value upstream.
func TestKeyModuleChargerClientIPHeader(t *testing.T) {
	k := startKeyNativeStackEngine(t, jwtEngines[1], func(p string) string { return withMode(p, "quota") })
	k.waitKeyTable(t, k.port)
	signed, _ := createKey(t, k.stack, "ip-signed", "pro")
	for what, key := range map[string]string{"opaque": createOpaqueKey(t, k, "ip-opaque", "pro"), "signed": signed} {
		code, echo, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key, "x-tollgate-client-ip": "10.9.9.9"})
		if code != 200 || echo == nil {
			t.Fatalf("%s key: %d %s", what, code, body)
		}
		if v := hdr(echo, "x-tollgate-client-ip"); v != "" {
			t.Errorf("%s key: the upstream got the client's x-tollgate-client-ip %q", what, v)
		}
	}
}
