package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// mixedNativePolicy has routes accepting API keys and JWTs (the native
// mixed path: /m, /ma with a role, /d without an auth block, which
// defaults to every configured method) and, as the reference, the same
// routes with a no-op Lua script, which keeps them on ext_authz (/x, /xa).
// A template of nativeEnv.policy.
const mixedNativePolicy = `version: 1
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
routes:
  - {name: mixed, match: {pathPrefix: /m/}, backend: echo, auth: {methods: [apiKey, jwt]}}
  - {name: mixed-admin, match: {pathPrefix: /ma/}, backend: echo, auth: {methods: [jwt, apiKey], roles: [admin]}}
  - {name: mixed-default, match: {pathPrefix: /d/}, backend: echo}
  - name: ref
    match: {pathPrefix: /x/}
    backend: echo
    auth: {methods: [apiKey, jwt]}
    lua: |
      function envoy_on_request(h) end
  - name: ref-admin
    match: {pathPrefix: /xa/}
    backend: echo
    auth: {methods: [jwt, apiKey], roles: [admin]}
    lua: |
      function envoy_on_request(h) end
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// startMixedNativeStack starts a control plane with the native key path
// (key pepper, Redis), the IdP and one Envoy, and waits until a signed key
// is admitted on /m (the first exceptions table reached Envoy).
func startMixedNativeStack(t *testing.T) (*authStack, string) {
	return startMixedNativeStackEngine(t, jwtEngines[0], "exact")
}

// startMixedNativeStackMode is startMixedNativeStack with rateLimits.mode.
func startMixedNativeStackMode(t *testing.T, mode string) (*authStack, string) {
	return startMixedNativeStackEngine(t, jwtEngines[0], mode)
}

// startMixedNativeStackEngine is startMixedNativeStackMode with the
// native routes decided by engine.
func startMixedNativeStackEngine(t *testing.T, engine jwtEngine, mode string) (*authStack, string) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	policy := withMode(n.policy(t, mixedNativePolicy, port), mode)
	s := n.stack(t, policy, engine.args(t)...)
	s.envoy("public", "mixed-native-0", "delta")
	a := n.authStack(s, port)
	key := signedKey(t, keyClaims("warmup", "warmup00", "pro"))
	if err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		code, _, _ := a.call(t, "/m/x", map[string]string{"x-api-key": key})
		return code == 200, nil
	}); err != nil {
		t.Fatalf("a signed key was never accepted on the mixed route: %v", err)
	}
	return a, policy
}

// refusal is what a client sees of a refusal.
type refusal struct {
	status    int
	body      string
	challenge string
	upstream  bool
}

func (a *authStack) refusal(t *testing.T, path string, headers map[string]string) refusal {
	t.Helper()
	resp, err := a.client.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path), "", headers)
	if err != nil {
		t.Fatal(err)
	}
	return refusal{status: resp.Status, body: string(resp.Body), challenge: resp.Header.Get("WWW-Authenticate"),
		upstream: resp.Header.Get("X-Upstream") != ""}
}

// opaqueKey creates an opaque (tg_) key through the admin API.
func opaqueKey(t *testing.T, s *stack, consumer string, roles string) string {
	t.Helper()
	var created struct{ Key string }
	out := s.cli(0, "keys", "create", "--consumer", consumer, "--tier", "pro", "--roles", roles, "-o", "json", "--format", "opaque")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
		t.Fatalf("keys create made no opaque key (%v): %s", err, out)
	}
	return created.Key
}

// TestMixedNativeAdmitsWithoutExtAuthz: on a route accepting API keys and
// JWTs, a JWT of the configured provider and a signed key are admitted by
// Envoy with no ext_authz Check and the identity ext_authz would set; an
// opaque key makes exactly one Check.
func TestMixedNativeAdmitsWithoutExtAuthz(t *testing.T) {
	eachJWTEngine(t, testMixedNativeAdmitsWithoutExtAuthz)
}

func testMixedNativeAdmitsWithoutExtAuthz(t *testing.T, engine jwtEngine) {
	a, policy := startMixedNativeStackEngine(t, engine, "exact")
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := a.cli(0, "validate", path); !strings.Contains(out, "route mixed: JWTs and signed API keys in Envoy") ||
		!strings.Contains(out, "route mixed-default: JWTs and signed API keys in Envoy") {
		t.Errorf("validate does not report the mixed path:\n%s", out)
	}
	spoof := map[string]string{"X-User-ID": "mallory", "X-User-Roles": "admin", "X-Consumer-Tier": "enterprise", "X-Tenant-ID": "evil"}
	key := signedKey(t, keyClaims("acme", "key00001", "pro", "user", "admin"))
	jwt := a.idp.rs256("k1", a.idp.claims("alice", "user", "admin"))
	admitted := []struct {
		name, path string
		headers    map[string]string
		want       map[string]string
	}{
		{"JWT", "/m/1", bearer(jwt), map[string]string{"x-user-id": "corp:alice", "x-user-roles": "user,admin", "x-tenant-id": "acme", "x-consumer-tier": "pro"}},
		{"JWT on the default route", "/d/1", bearer(jwt), map[string]string{"x-user-id": "corp:alice"}},
		{"JWT with the role", "/ma/1", bearer(jwt), map[string]string{"x-user-id": "corp:alice"}},
		{"signed key", "/m/1", map[string]string{"x-api-key": key}, map[string]string{"x-user-id": "acme", "x-user-roles": "user,admin", "x-tenant-id": "t1", "x-consumer-tier": "pro"}},
		{"signed key as Authorization: ApiKey", "/m/1", map[string]string{"Authorization": "ApiKey " + key}, map[string]string{"x-user-id": "acme"}},
		{"signed key with the role", "/ma/1", map[string]string{"x-api-key": key}, map[string]string{"x-user-id": "acme"}},
	}
	before := a.authzChecks(t)
	for _, tt := range admitted {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range spoof {
				h[k] = v
			}
			for k, v := range tt.headers {
				h[k] = v
			}
			code, echo, body := a.call(t, tt.path, h)
			if code != 200 || echo == nil {
				t.Fatalf("status %d, body %s", code, body)
			}
			for k, v := range tt.want {
				if got := hdr(echo, k); got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			if hdr(echo, "authorization") != "" || hdr(echo, "x-api-key") != "" {
				t.Errorf("credentials reached the upstream: %v", echo.Headers)
			}
		})
	}
	after := a.authzChecks(t)
	t.Logf("ext_authz Check calls for %d native requests: %d", len(admitted), after-before)
	if after != before {
		t.Errorf("ext_authz served %d Check calls for JWTs and signed keys, want 0", after-before)
	}
	t.Run("opaque key: through ext_authz, one Check", func(t *testing.T) {
		opaque := opaqueKey(t, a.stack, "legacy", "admin")
		before := a.authzChecks(t)
		code, echo, body := a.call(t, "/ma/1", map[string]string{"x-api-key": opaque, "X-User-ID": "mallory"})
		if code != 200 || hdr(echo, "x-user-id") != "legacy" {
			t.Fatalf("status %d, body %s", code, body)
		}
		if n := a.authzChecks(t) - before; n != 1 {
			t.Errorf("an opaque key made %d Check calls, want 1", n)
		}
	})
}

// TestMixedNativeRefusesAsExtAuthz sends every refusal case to the native
// mixed routes and to the same routes on ext_authz, and wants the same
// status, body and WWW-Authenticate from both, never the upstream.
func TestMixedNativeRefusesAsExtAuthz(t *testing.T) {
	eachJWTEngine(t, testMixedNativeRefusesAsExtAuthz)
}

func testMixedNativeRefusesAsExtAuthz(t *testing.T, engine jwtEngine) {
	a, _ := startMixedNativeStackEngine(t, engine, "exact")
	// Keys from the key store: ext_authz refuses a signed key whose record
	// it does not hold (unknown_key), Envoy checks the signature and the
	// exceptions table.
	good, goodID := createKey(t, a.stack, "acme", "pro", "--roles", "user")
	valid := keyClaims("acme", goodID, "pro", "user")
	expiring, _ := createKey(t, a.stack, "brief", "pro", "--expires", "1s")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	_, kid := keySigner(t, keyPepper)
	claims := a.idp.claims("alice", "user")
	jwt := a.idp.rs256("k1", claims)
	now := time.Now()
	opaque := opaqueKey(t, a.stack, "legacy", "user")
	revoked, id := createKey(t, a.stack, "gone", "pro")
	a.cli(0, "keys", "revoke", id)
	if err := harness.WaitFor(testCtx(t, 5*time.Second), func() (bool, error) {
		return a.refusal(t, "/m/1", map[string]string{"x-api-key": revoked}).status == 401 &&
			a.refusal(t, "/m/1", map[string]string{"x-api-key": expiring}).status == 401, nil
	}); err != nil {
		t.Fatalf("the revocation or the expiry never reached Envoy: %v", err)
	}
	cases := []struct {
		name    string
		path    string
		headers map[string]string
	}{
		{"no credential", "/m/1", nil},
		{"forged key signature", "/m/1", map[string]string{"x-api-key": good[:len(good)-6] + "AAAAAA"}},
		{"key signed by another Ed25519 key", "/m/1", map[string]string{"x-api-key": signKey(stranger, kid, valid)}},
		{"expired key", "/m/1", map[string]string{"x-api-key": expiring}},
		{"revoked key", "/m/1", map[string]string{"x-api-key": revoked}},
		{"key with another issuer", "/m/1", map[string]string{"x-api-key": signedKey(t, with(valid, "iss", "tollgate:other"))}},
		{"garbage after tg.", "/m/1", map[string]string{"x-api-key": "tg.not-a-key"}},
		{"unknown opaque key", "/m/1", map[string]string{"x-api-key": "tg_doesnotexist0000000000000000"}},
		{"expired JWT", "/m/1", bearer(a.idp.rs256("k1", with(claims, "exp", now.Add(-time.Hour).Unix())))},
		{"JWT with a bad signature", "/m/1", bearer(jwt[:len(jwt)-4] + "AAAA")},
		{"JWT for another audience", "/m/1", bearer(a.idp.rs256("k1", with(claims, "aud", "other")))},
		{"JWT of an unknown issuer", "/m/1", bearer(a.idp.rs256("k1", with(claims, "iss", "https://evil.test/")))},
		{"JWT without exp", "/m/1", bearer(a.idp.rs256("k1", with(claims, "exp", nil)))},
		{"JWT with alg none", "/m/1", bearer(none(claims))},
		{"JWT with ES256 outside the allow-list", "/m/1", bearer(a.idp.es256(claims))},
		{"JWT with a roles object", "/m/1", bearer(a.idp.rs256("k1", with(claims, "roles", map[string]any{"admin": true})))},
		{"JWT with a NUL in the user id", "/m/1", bearer(a.idp.rs256("k1", with(claims, "sub", "alice\x00x")))},
		{"a JWT in the key header", "/m/1", map[string]string{"x-api-key": jwt}},
		{"a JWT as Authorization: ApiKey", "/m/1", map[string]string{"Authorization": "ApiKey " + jwt}},
		{"a JWT and a signed key", "/m/1", map[string]string{"Authorization": "Bearer " + jwt, "x-api-key": good}},
		{"a JWT and an opaque key", "/m/1", map[string]string{"Authorization": "Bearer " + jwt, "x-api-key": opaque}},
		{"a signed key and a garbage bearer", "/m/1", map[string]string{"Authorization": "Bearer garbage", "x-api-key": good}},
		{"an expired JWT and a forged key", "/m/1", map[string]string{"Authorization": "Bearer " + a.idp.rs256("k1", with(claims, "exp", now.Add(-time.Hour).Unix())), "x-api-key": good[:len(good)-6] + "AAAAAA"}},
		{"two JWTs in Authorization", "/m/1", map[string]string{"Authorization": "Bearer " + jwt + ", Bearer " + jwt}},
		{"a JWT with the role missing", "/ma/1", bearer(jwt)},
		{"a signed key with the role missing", "/ma/1", map[string]string{"x-api-key": good}},
		{"an opaque key with the role missing", "/ma/1", map[string]string{"x-api-key": opaque}},
		{"unsupported scheme", "/m/1", map[string]string{"Authorization": "Basic YTpi"}},
	}

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			ref := a.refusal(t, "/x"+strings.TrimPrefix(tt.path, "/m"), tt.headers)
			if strings.HasPrefix(tt.path, "/ma/") {
				ref = a.refusal(t, "/xa/"+strings.TrimPrefix(tt.path, "/ma/"), tt.headers)
			}
			got := a.refusal(t, tt.path, tt.headers)
			if got.status < 400 || got.upstream {
				t.Fatalf("native mixed route admitted it: %+v (ext_authz: %+v)", got, ref)
			}
			if ref.status < 400 {
				t.Fatalf("the reference route admitted it: %+v", ref)
			}
			if got != ref {
				t.Errorf("native %+v\next_authz %+v", got, ref)
			}
		})
	}
	// jwt_authn finds the key prefix anywhere in a header value: a key that
	// is not its header's whole value is refused, with ext_authz's answer.
	for _, h := range []map[string]string{
		{"x-api-key": "junk" + good},
		{"x-api-key": "tg_x," + good},
		{"Authorization": "Bearer junkApiKey " + good},
		{"Authorization": "Bearer " + good},
		{"Authorization": "Basic ApiKey " + good},
		{"Authorization": "bearer junkApiKey " + good},
		{"Authorization": "apikey junkApiKey " + good},
	} {
		t.Run("a signed key inside other text", func(t *testing.T) {
			got, ref := a.refusal(t, "/m/1", h), a.refusal(t, "/x/1", h)
			if got.status != 401 || got.upstream || got != ref {
				t.Fatalf("%v:\nnative %+v\next_authz %+v", h, got, ref)
			}
		})
	}
}

// TestMixedNativeTierLimits: a tier's limit holds on a mixed route for each
// kind of credential, counted once: in Envoy's ratelimit filter for a JWT
// or a signed key (no Check), in the Check for an opaque key (not again by
// the filter); in quota mode, by Envoy's quota filter for all three.
func TestMixedNativeTierLimits(t *testing.T) { eachJWTEngine(t, testMixedNativeTierLimits) }

func testMixedNativeTierLimits(t *testing.T, engine jwtEngine) {
	for _, mode := range []string{"exact", "quota"} {
		t.Run(mode, func(t *testing.T) {
			a, _ := startMixedNativeStackEngine(t, engine, mode)
			signed, _ := createKey(t, a.stack, "signed-tiny", "tiny")
			var created struct{ Key string }
			out := a.cli(0, "keys", "create", "--consumer", "opaque-tiny", "--tier", "tiny", "-o", "json", "--format", "opaque")
			if err := json.Unmarshal([]byte(out), &created); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				name    string
				headers map[string]string
			}{
				{"JWT", bearer(a.idp.rs256("k1", with(a.idp.claims("tiny-user"), "plan", "tiny")))},
				{"signed key", map[string]string{"x-api-key": signed}},
				{"opaque key", map[string]string{"x-api-key": created.Key}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					codes := make([]int, 0, 5)
					for range 5 {
						code, _, _ := a.call(t, "/m/1", tt.headers)
						codes = append(codes, code)
					}
					if want := []int{200, 200, 200, 429, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
						t.Fatalf("tiny tier (3/day): %v, want %v", codes, want)
					}
				})
			}
		})
	}
}
