package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// keyNativePolicy has API-key-only routes (the native key path) on two
// gateways (one Envoy each in the replica test), and a JWT provider whose
// tokens must never pass as keys.
const keyNativePolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
{{.JWT}}
rateLimits:
  tiers:
    pro: [{requests: 1000, per: minute}]
    tiny: [{requests: 3, per: day}]
  defaultTier: pro
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
  - name: second
    listeners: [{name: http, port: {{.Second}}, address: 127.0.0.1}]
routes:
  - {name: keys, match: {pathPrefix: /keys}, backend: echo, auth: {methods: [apiKey]}}
  - {name: admin, match: {pathPrefix: /admin}, backend: echo, auth: {methods: [apiKey], roles: [admin]}}
  - {name: raw, match: {pathPrefix: /raw}, backend: echo, auth: {methods: [apiKey], forwardCredentials: true}}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// keyPepper is the stacks' key pepper: the control plane derives its key
// signer from it, and so does the test (signedKey).
const keyPepper = "e2e-pepper-0123456789"

// keyStack is a control plane (or two) with the native key path, an
// Envoy per gateway and the Redis holding keys and exceptions.
type keyStack struct {
	*authStack
	redis      *redisServer
	secondPort int
	proxy      *harness.Envoy
	policy     string // the policy it started with
}

func startKeyNativeStack(t *testing.T) *keyStack { return startKeyNativeStackPolicy(t, exactMode) }

// exactMode sets rateLimits.mode exact in a key policy.
func exactMode(policy string) string { return withMode(policy, "exact") }

// withMode sets rateLimits.mode in a key policy.
func withMode(policy, mode string) string {
	return strings.Replace(policy, "rateLimits:\n", "rateLimits:\n  mode: "+mode+"\n", 1)
}

// startKeyNativeStackMode is startKeyNativeStack with rateLimits.mode.
func startKeyNativeStackMode(t *testing.T, mode string) *keyStack {
	return startKeyNativeStackPolicy(t, func(policy string) string { return withMode(policy, mode) })
}

// startKeyNativeStackPolicy is startKeyNativeStack with keyNativePolicy
// changed by edit; the stack's policy field holds the result.
func startKeyNativeStackPolicy(t *testing.T, edit func(string) string) *keyStack {
	return startKeyNativeStackEngine(t, jwtEngines[0], edit)
}

// startKeyNativeStackEngine is startKeyNativeStackPolicy with the native
// routes decided by engine: jwt_authn and the key identity filter, or
// Tollgate's Envoy module.
func startKeyNativeStackEngine(t *testing.T, engine jwtEngine, edit func(string) string) *keyStack {
	n := startNativeEnv(t)
	port, second := harness.FreePort(t), harness.FreePort(t)
	policy := edit(n.policy(t, keyNativePolicy, port, second))
	s := n.stack(t, policy, engine.args(t)...)
	e := s.envoy("public", "key-native-0", "delta")
	return &keyStack{authStack: n.authStack(s, port), redis: n.redis, secondPort: second, proxy: e, policy: policy}
}

// startKeyReplicas starts two control-plane replicas (a, b) on one Redis
// policy and key store with keyNativePolicy, an Envoy of gateway public
// on a (node prefix-a, delta xDS) and one of gateway second on b
// (prefix-b, state of the world), and waits until both Envoys hold the
// exceptions table. k is a's stack; k.port and k.secondPort are the
// listeners of the Envoys on a and on b.
func startKeyReplicas(t *testing.T, prefix string) (k *keyStack, a, b *stack) {
	t.Helper()
	return startKeyReplicasMode(t, prefix, "exact")
}

// startKeyReplicasMode is startKeyReplicas with rateLimits.mode.
func startKeyReplicasMode(t *testing.T, prefix, mode string) (k *keyStack, a, b *stack) {
	t.Helper()
	n := startNativeEnv(t)
	portA, portB := harness.FreePort(t), harness.FreePort(t)
	// Exact limits: the tests hammer each consumer through both Envoys at
	// once, within its burst (1,000) but above its rate (16.7/s); in quota
	// mode a consumer's second Envoy gets its share of the rate at once
	// but of the burst only after the first one's next report (up to 5 s;
	// docs/concepts/rate-limiting.md).
	policy := strings.Replace(n.policy(t, keyNativePolicy, portA, portB), "rateLimits:\n", "rateLimits:\n  mode: "+mode+"\n", 1)
	store := []string{"--store", "redis://" + n.redis.addr + "/0", "--store-prefix", haPrefix}
	a, b = n.stack(t, policy, store...), n.stack(t, policy, store...)
	a.envoy("public", prefix+"-a", "delta")
	b.envoy("second", prefix+"-b", "sotw")
	k = &keyStack{authStack: n.authStack(a, portA), redis: n.redis, secondPort: portB, policy: policy}
	k.waitKeyTable(t, portA)
	k.waitKeyTable(t, portB)
	return k, a, b
}

// keySigner is the Ed25519 key the control plane derives from pepper
// (HKDF-SHA256, info "tollgate api-key signing v1") and its kid.
func keySigner(t *testing.T, pepper string) (ed25519.PrivateKey, string) {
	seed, err := hkdf.Key(sha256.New, []byte(pepper), nil, "tollgate api-key signing v1", ed25519.SeedSize)
	if err != nil {
		t.Fatal(err)
	}
	k := ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(k.Public().(ed25519.PublicKey))
	return k, b64(sum[:9])
}

// keyClaims are a signed key's claims for consumer with key id jti, in
// the epoch keyEpoch.
func keyClaims(consumer, jti, tier string, roles ...string) map[string]any {
	c := map[string]any{"iss": "tollgate:keys", "sub": consumer, "jti": jti, "iat": time.Now().Unix(), "tnt": "t1", "tier": tier,
		"ep": keyEpoch}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// signKey returns "tg." + the JWS of claims signed by k under kid.
func signKey(k ed25519.PrivateKey, kid string, claims map[string]any) string {
	in := signingInput(map[string]any{"alg": "EdDSA", "kid": kid}, claims)
	return "tg." + in + "." + b64(ed25519.Sign(k, []byte(in)))
}

// signedKey signs claims with the stacks' signer.
func signedKey(t *testing.T, claims map[string]any) string {
	k, kid := keySigner(t, keyPepper)
	return signKey(k, kid, claims)
}

// createKey creates a signed key through the admin API of s and returns
// it with its id.
func createKey(t *testing.T, s *stack, consumer, tier string, extra ...string) (key, id string) {
	t.Helper()
	var created struct {
		Key    string `json:"key"`
		Record struct {
			ID string `json:"id"`
		} `json:"record"`
	}
	args := append([]string{"keys", "create", "--consumer", consumer, "--tier", tier, "-o", "json"}, extra...)
	out := s.cli(0, args...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg.") {
		t.Fatalf("keys create made no signed key (%v): %s", err, out)
	}
	return created.Key, created.Record.ID
}

// get sends GET path to the Envoy listening on port.
func (k *keyStack) get(t *testing.T, port int, path string, headers map[string]string) *harness.HTTPResponse {
	t.Helper()
	resp, err := k.client.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", port, path), "", headers)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitKeyTable waits until a signed key is served (the first exceptions
// table reached Envoy).
func (k *keyStack) waitKeyTable(t *testing.T, port int) {
	t.Helper()
	key := signedKey(t, keyClaims("warmup", "warmup00", "pro"))
	if err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		return k.get(t, port, "/keys/x", map[string]string{"x-api-key": key}).Status == 200, nil
	}); err != nil {
		t.Fatalf("a signed key was never accepted: %v", err)
	}
}

func TestAPIKeyNativeAdmitsWithoutExtAuthz(t *testing.T) {
	eachJWTEngine(t, testAPIKeyNativeAdmitsWithoutExtAuthz)
}

func testAPIKeyNativeAdmitsWithoutExtAuthz(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	before := k.authzChecks(t)
	key := signedKey(t, keyClaims("acme", "key00001", "pro", "user", "admin"))
	t.Run("signed key: identity from the claims, spoofed headers and the key gone", func(t *testing.T) {
		code, echo, body := k.call(t, "/keys/1", map[string]string{"x-api-key": key,
			"X-User-ID": "mallory", "X-User-Roles": "root", "X-Consumer-Tier": "enterprise", "X-Tenant-ID": "evil"})
		if code != 200 || echo == nil {
			t.Fatalf("status %d, body %s", code, body)
		}
		want := map[string]string{"x-user-id": "acme", "x-user-roles": "user,admin", "x-tenant-id": "t1", "x-consumer-tier": "pro", "x-api-key": ""}
		for h, v := range want {
			if got := hdr(echo, h); got != v {
				t.Errorf("upstream header %s = %q, want %q", h, got, v)
			}
		}
	})
	t.Run("Authorization: ApiKey form", func(t *testing.T) {
		code, echo, body := k.call(t, "/admin/1", map[string]string{"Authorization": "ApiKey " + key})
		if code != 200 || hdr(echo, "authorization") != "" {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	t.Run("forwardCredentials keeps the key", func(t *testing.T) {
		code, echo, _ := k.call(t, "/raw/1", map[string]string{"x-api-key": key})
		if code != 200 || hdr(echo, "x-api-key") != key {
			t.Fatalf("status %d, upstream key %q", code, hdr(echo, "x-api-key"))
		}
	})
	t.Run("missing role is 403 with ext_authz's body", func(t *testing.T) {
		code, _, body := k.call(t, "/admin/1", map[string]string{"x-api-key": signedKey(t, keyClaims("bob", "key00002", "pro", "user"))})
		if code != 403 || body != `{"error":"forbidden","reason":"missing_role"}` {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	t.Run("a key from keys create (signed) with tenant and roles", func(t *testing.T) {
		created, _ := createKey(t, k.stack, "made", "pro", "--tenant", "t9", "--roles", "admin,ops")
		code, echo, body := k.call(t, "/admin/1", map[string]string{"x-api-key": created})
		if code != 200 || hdr(echo, "x-user-id") != "made" || hdr(echo, "x-tenant-id") != "t9" || hdr(echo, "x-user-roles") != "admin,ops" {
			t.Fatalf("status %d, body %s, upstream %v", code, body, echo)
		}
	})
	after := k.authzChecks(t)
	t.Logf("ext_authz Check calls for signed keys: %d", after-before)
	if after != before {
		t.Errorf("ext_authz served %d Check calls for signed keys, want 0", after-before)
	}
	t.Run("opaque key still works, through ext_authz", func(t *testing.T) {
		var created struct{ Key string }
		out := k.cli(0, "keys", "create", "--consumer", "legacy", "--tier", "pro", "--roles", "admin", "-o", "json", "--format", "opaque")
		if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
			t.Skipf("keys create made no opaque key (%v): %s", err, out)
		}
		code, echo, body := k.call(t, "/admin/1", map[string]string{"x-api-key": created.Key})
		if code != 200 || hdr(echo, "x-user-id") != "legacy" {
			t.Fatalf("status %d, body %s", code, body)
		}
		if k.authzChecks(t) != after+1 {
			t.Errorf("an opaque key made %d Check calls, want 1", k.authzChecks(t)-after)
		}
	})
}

func TestAPIKeyNativeRefusesAttacks(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeRefusesAttacks) }

func testAPIKeyNativeRefusesAttacks(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	valid := keyClaims("acme", "key00001", "pro", "admin")
	good := signedKey(t, valid)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	_, kid := keySigner(t, keyPepper)
	idpToken := k.idp.rs256("k1", k.idp.claims("alice", "admin"))
	rejected := []struct{ name, key, reason string }{
		{"forged signature", good[:len(good)-6] + "AAAAAA", "unknown_key"},
		{"alg none", "tg." + none(valid), ""},
		{"a valid JWT from another issuer", "tg." + idpToken, ""},
		{"a valid JWT from another issuer, without the prefix", idpToken, "malformed_key"},
		{"signed by another Ed25519 key", signKey(stranger, kid, valid), "unknown_key"},
		{"expired", signedKey(t, with(valid, "exp", time.Now().Add(-time.Minute).Unix())), "expired_key"},
		{"garbage after the prefix", "tg.not-a-key", "malformed_key"},
		{"wrong issuer", signedKey(t, with(valid, "iss", "tollgate:other")), "malformed_key"},
		{"sub not a string", signedKey(t, with(valid, "sub", 42)), "malformed_key"},
		{"sub with a NUL", signedKey(t, with(valid, "sub", "acme\x00x")), "malformed_key"},
	}
	for _, tt := range rejected {
		t.Run("401 "+tt.name, func(t *testing.T) {
			resp := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": tt.key})
			body := string(resp.Body)
			if resp.Status != 401 || resp.Header.Get("X-Upstream") != "" || !strings.HasPrefix(body, `{"error":"unauthorized","reason":"`) ||
				(tt.reason != "" && body != `{"error":"unauthorized","reason":"`+tt.reason+`"}`) {
				t.Fatalf("status %d, body %s, want 401 %q", resp.Status, body, tt.reason)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); ch != `ApiKey realm="tollgate"` {
				t.Errorf("WWW-Authenticate %q", ch)
			}
		})
	}
	t.Run("no key is ext_authz's 401", func(t *testing.T) {
		resp := k.get(t, k.port, "/keys/1", nil)
		if resp.Status != 401 || string(resp.Body) != `{"error":"unauthorized","reason":"missing_credentials"}` {
			t.Fatalf("status %d, body %s", resp.Status, resp.Body)
		}
	})
	t.Run("a signed key and a bearer token are ambiguous", func(t *testing.T) {
		resp := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": good, "Authorization": "Bearer " + idpToken})
		if resp.Status != 401 || string(resp.Body) != `{"error":"unauthorized","reason":"ambiguous_credentials"}` {
			t.Fatalf("status %d, body %s", resp.Status, resp.Body)
		}
	})
	// jwt_authn finds "tg." anywhere in the header value (and joins
	// repeated headers with commas): a key that is not the whole value is
	// refused (malformed_key), not admitted with ext_authz skipped. The
	// module answers exactly what the ext_authz service answers for the
	// same headers (its own code, or ext_authz itself for a key that is
	// not in signed form).
	for _, tc := range []struct {
		h      map[string]string
		module string
	}{
		{map[string]string{"x-api-key": "junk" + good}, "malformed_key"},
		{map[string]string{"x-api-key": "tg_x," + good}, "ambiguous_credentials"},
		{map[string]string{"Authorization": "Bearer junkApiKey " + good}, "method_not_allowed"},
		{map[string]string{"Authorization": "Basic ApiKey " + good}, "unsupported_scheme"},
	} {
		t.Run("401 a signed key inside other text", func(t *testing.T) {
			reason := "malformed_key"
			if engine.name == "module" {
				reason = tc.module
			}
			resp := k.get(t, k.port, "/keys/1", tc.h)
			if resp.Status != 401 || resp.Header.Get("X-Upstream") != "" ||
				string(resp.Body) != `{"error":"unauthorized","reason":"`+reason+`"}` ||
				resp.Header.Get("WWW-Authenticate") != `ApiKey realm="tollgate"` {
				t.Fatalf("status %d, body %s, want 401 %s", resp.Status, resp.Body, reason)
			}
		})
	}
	t.Run("a fake CORS preflight needs a key", func(t *testing.T) {
		resp, err := k.client.Do(testCtx(t, 10*time.Second), "OPTIONS", fmt.Sprintf("http://127.0.0.1:%d/keys/1", k.port), "",
			map[string]string{"Origin": "https://evil.test", "Access-Control-Request-Method": "DELETE"}, nil)
		if err != nil || resp.Status != 401 || resp.Header.Get("X-Upstream") != "" {
			t.Fatalf("preflight: %+v %v", resp, err)
		}
	})
}

// TestAPIKeyNativeExceptions: a revocation, a tier update and a Redis
// outage reach Envoy through the exceptions table (ECDS) alone.
func TestAPIKeyNativeExceptions(t *testing.T) { eachJWTEngine(t, testAPIKeyNativeExceptions) }

func testAPIKeyNativeExceptions(t *testing.T, engine jwtEngine) {
	k := startKeyNativeStackEngine(t, engine, exactMode)
	k.waitKeyTable(t, k.port)
	e := k.proxy
	lds := envoyVersions(t, e)
	t.Run("revoked within a second, no listener or route change", func(t *testing.T) {
		key, id := createKey(t, k.stack, "acme", "pro")
		if resp := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": key}); resp.Status != 200 {
			t.Fatalf("before the revocation: %d %s", resp.Status, resp.Body)
		}
		first := keyTableReloads(t, e)
		took := revokeAndWait(t, k, k.stack, id, key, time.Second)
		t.Logf("revocation → 401 on the Envoy: %s", took.Round(time.Millisecond))
		if after := envoyVersions(t, e); after != lds {
			t.Errorf("listener/route/cluster versions changed with the table: %s → %s", lds, after)
		}
		// The watcher polls every 200 ms: an unchanged table is not pushed
		// again (the filter is not reloaded).
		reloads := keyTableReloads(t, e)
		if reloads <= first {
			t.Fatalf("the revocation reached Envoy without an ECDS reload (%d → %d)", first, reloads)
		}
		time.Sleep(time.Second)
		if again := keyTableReloads(t, e); again != reloads {
			t.Errorf("an unchanged table reloaded the key identity filter %d times in 1s", again-reloads)
		}
	})
	t.Run("tier update applies the new tier's limit without a new key", func(t *testing.T) {
		key, id := createKey(t, k.stack, "tiered", "pro")
		for range 5 {
			if resp := k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": key}); resp.Status != 200 {
				t.Fatalf("pro tier: %d", resp.Status)
			}
		}
		k.cli(0, "keys", "update", id, "--tier", "tiny")
		waitUpstreamTier(t, k, key, "tiny")
		codes := map[int]int{}
		for range 5 {
			codes[k.get(t, k.port, "/keys/1", map[string]string{"x-api-key": key}).Status]++
		}
		if codes[429] == 0 || codes[200] > 3 {
			t.Fatalf("tiny tier (3/day) after the update: %v, want at most 3×200 and the rest 429", codes)
		}
	})
	t.Run("expiry update refuses the key", func(t *testing.T) {
		key, id := createKey(t, k.stack, "exp", "pro", "--expires", "1h")
		k.cli(0, "keys", "update", id, "--expires", "1s")
		waitKeyStatus(t, k, k.port, key, 401, `{"error":"unauthorized","reason":"expired_key"}`, 3*time.Second)
	})
	t.Run("Redis down past maxStale: 503 key_store_unavailable; back without its data: 401 unknown_key, new keys 200", func(t *testing.T) {
		key := signedKey(t, keyClaims("acme", "outage01", "pro"))
		k.redis.kill(t)
		waitKeyStatus(t, k, k.port, key, 503, `{"error":"unavailable","reason":"key_store_unavailable"}`, 5*time.Second)
		// The Redis comes back empty (no persistence): every revocation is
		// lost, so every key of the old epoch is unknown, as on ext_authz.
		k.redis.restart(t)
		waitKeyStatus(t, k, k.port, key, 401, `{"error":"unauthorized","reason":"unknown_key"}`, 10*time.Second)
		fresh, _ := createKey(t, k.stack, "acme", "pro")
		waitKeyStatus(t, k, k.port, fresh, 200, "", 5*time.Second)
	})
}

// TestAPIKeyNativeRevokeAcrossReplicas: two control-plane replicas on one
// Redis, an Envoy on each; a revocation written once reaches both.
func TestAPIKeyNativeRevokeAcrossReplicas(t *testing.T) {
	k, a, b := startKeyReplicas(t, "key")
	portA, portB := k.port, k.secondPort
	key, id := createKey(t, b, "acme", "pro") // created through replica B
	k.waitKeyTable(t, portA)
	a.cli(0, "keys", "revoke", id) // revoked through replica A
	start := time.Now()
	took := map[int]time.Duration{}
	for len(took) < 2 && time.Since(start) < time.Second {
		for _, port := range []int{portA, portB} {
			if _, ok := took[port]; ok {
				continue
			}
			resp, err := k.client.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/keys/1", port), "", map[string]string{"x-api-key": key})
			if err == nil && resp.Status == 401 && string(resp.Body) == revokedKeyBody {
				took[port] = time.Since(start)
			}
		}
	}
	t.Logf("revocation → 401: Envoy on replica A %s, Envoy on replica B %s", took[portA].Round(time.Millisecond), took[portB].Round(time.Millisecond))
	if len(took) < 2 {
		t.Fatalf("revoked key still accepted after 1s by an Envoy (refused by: %v)", took)
	}
}

// revokedKeyBody is the answer to a revoked key, on the native path and
// from ext_authz.
const revokedKeyBody = `{"error":"unauthorized","reason":"revoked_key"}`

// revokeAndWait revokes key (id) through the admin API of via and waits
// until k's Envoy (k.port) refuses it with 401 revoked_key, within
// within; it returns how long that took.
func revokeAndWait(t *testing.T, k *keyStack, via *stack, id, key string, within time.Duration) time.Duration {
	t.Helper()
	via.cli(0, "keys", "revoke", id)
	return waitKeyStatus(t, k, k.port, key, 401, revokedKeyBody, within)
}

// waitKeyStatus polls a signed key until Envoy answers status (and body,
// when not empty), failing after within; it returns how long it took.
func waitKeyStatus(t *testing.T, k *keyStack, port int, key string, status int, body string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last *harness.HTTPResponse
	err := harness.WaitFor(testCtx(t, within), func() (bool, error) {
		resp, err := k.client.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/keys/1", port), "", map[string]string{"x-api-key": key})
		if err != nil {
			return false, nil
		}
		last = resp
		return resp.Status == status && (body == "" || string(resp.Body) == body), nil
	})
	if err != nil {
		t.Fatalf("no %d %s within %s: last %+v", status, body, within, last)
	}
	return time.Since(start)
}

// waitUpstreamTier waits until the upstream sees key's tier as tier.
func waitUpstreamTier(t *testing.T, k *keyStack, key, tier string) {
	t.Helper()
	if err := harness.WaitFor(testCtx(t, 2*time.Second), func() (bool, error) {
		_, echo, _ := k.call(t, "/keys/1", map[string]string{"x-api-key": key})
		return hdr(echo, "x-consumer-tier") == tier, nil
	}); err != nil {
		t.Fatalf("tier never became %s: %v", tier, err)
	}
}

// envoyVersions returns the LDS, CDS and RDS versions Envoy holds (the raw
// text: a version gauge is a uint64 hash, often beyond int64).
func envoyVersions(t *testing.T, e *harness.Envoy) string {
	t.Helper()
	code, body, err := e.Admin(testCtx(t, 5*time.Second), "/stats?filter=version$")
	if err != nil || code != 200 {
		t.Fatalf("stats: %d %v", code, err)
	}
	var parts []string
	for _, line := range strings.Split(string(body), "\n") {
		name, _, _ := strings.Cut(line, ": ")
		if name == "listener_manager.lds.version" || name == "cluster_manager.cds.version" ||
			(strings.Contains(name, ".rds.") && strings.HasSuffix(name, ".version")) {
			parts = append(parts, line)
		}
	}
	if len(parts) < 3 {
		t.Fatalf("xDS version stats missing: %v", parts)
	}
	return strings.Join(slices.Sorted(slices.Values(parts)), " ")
}

// keyTableReloads is how often Envoy loaded the exceptions table's filter
// config over ECDS: the key identity filter's, or the Envoy module's.
func keyTableReloads(t *testing.T, e *harness.Envoy) int64 {
	t.Helper()
	st, err := e.Stats(testCtx(t, 5*time.Second), "extension_config_discovery")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range st {
		if strings.HasSuffix(name, ".config_reload") &&
			(strings.Contains(name, "tollgate.key_identity") || strings.Contains(name, "tollgate.identity_module.")) {
			return v
		}
	}
	t.Fatalf("no ECDS reload stat for the key identity filter: %v", st)
	return 0
}
