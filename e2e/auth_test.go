package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/upstream"
)

const authPolicy = `version: 1
auth:
  jwt:
    - name: corp
      issuer: %q
      audiences: [%q]
      jwksUri: %q
      algorithms: [RS256, ES256]
      claims: {userId: sub, roles: roles, tenant: tid, tier: plan}
  apiKeys: {header: x-api-key}
  oauth2:
    - name: partner
      introspectionUrl: %q
      clientId: %q
      clientSecretEnv: TEST_INTROSPECTION_SECRET
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: users, match: {pathPrefix: /users}, backend: echo, auth: {methods: [jwt, apiKey], roles: [user]}}
  - {name: admin, match: {pathPrefix: /admin}, backend: echo, auth: {methods: [jwt, apiKey], roles: [admin]}}
  - {name: orders, match: {pathPrefix: /orders}, backend: echo, auth: {methods: [oauth2], scopes: ["orders:read"]}}
  - {name: raw, match: {pathPrefix: /raw}, backend: echo, auth: {methods: [jwt], forwardCredentials: true}}
  - {name: health, match: {pathPrefix: /health}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%q]}
`

// authStack is a control plane with Redis-backed API keys, an IdP run by
// the test, an echo upstream and one Envoy.
type authStack struct {
	*stack
	idp    *idp
	redis  string
	port   int
	client *harness.HTTPClient
}

func startAuthStack(t *testing.T) *authStack {
	p := newIDP(t)
	up := harness.StartUpstream(t, "echo")
	redisAddr := harness.StartRedis(t)
	port := harness.FreePort(t)
	policy := fmt.Sprintf(authPolicy, idpIssuer, idpAudience, p.jwksURL(), p.introspectURL(), idpClientID, port, up.Addr())
	s := startStackWith(t, policy, stackOptions{
		args: []string{"--redis", "redis://" + redisAddr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
		env:  []string{"TEST_INTROSPECTION_SECRET=" + idpClientSecret},
	})
	s.envoy("public", "auth-0", "delta")
	return &authStack{stack: s, idp: p, redis: redisAddr, port: port, client: harness.NewHTTPClient(false)}
}

// call sends GET path with headers and returns the status, the upstream's
// view of the request (nil unless it reached the upstream) and the body.
func (a *authStack) call(t *testing.T, path string, headers map[string]string) (int, *upstream.Echo, string) {
	t.Helper()
	resp, err := a.client.Do(testCtx(t, 10*time.Second), "GET", fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path), "", headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Upstream") == "" {
		return resp.Status, nil, string(resp.Body)
	}
	var echo upstream.Echo
	if err := resp.JSON(&echo); err != nil {
		t.Fatal(err)
	}
	return resp.Status, &echo, string(resp.Body)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestAuthJWT(t *testing.T) {
	a := startAuthStack(t)
	valid := a.idp.claims("alice", "user")
	t.Run("valid token reaches the upstream with identity headers", func(t *testing.T) {
		h := bearer(a.idp.rs256("k1", valid))
		h["X-User-ID"] = "mallory"
		code, echo, body := a.call(t, "/users/1", h)
		if code != 200 || echo == nil {
			t.Fatalf("status %d, body %s", code, body)
		}
		// Identities are namespaced by provider: corp's sub=alice is corp:alice.
		want := map[string]string{"x-user-id": "corp:alice", "x-user-roles": "user", "x-tenant-id": "acme", "x-consumer-tier": "pro"}
		for k, v := range want {
			if hdr(echo, k) != v {
				t.Errorf("upstream header %s = %q, want %q (all: %v)", k, hdr(echo, k), v, echo.Headers)
			}
		}
		if hdr(echo, "authorization") != "" {
			t.Error("the credential was forwarded to the upstream")
		}
	})
	t.Run("ES256 accepted", func(t *testing.T) {
		if code, _, body := a.call(t, "/users/1", bearer(a.idp.es256(valid))); code != 200 {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	t.Run("forwardCredentials keeps Authorization", func(t *testing.T) {
		tok := a.idp.rs256("k1", valid)
		code, echo, _ := a.call(t, "/raw/x", bearer(tok))
		if code != 200 || hdr(echo, "authorization") != "Bearer "+tok {
			t.Fatalf("status %d, upstream authorization %q", code, hdr(echo, "authorization"))
		}
	})
	t.Run("missing role is 403", func(t *testing.T) {
		if code, _, body := a.call(t, "/admin/x", bearer(a.idp.rs256("k1", valid))); code != 403 || !strings.Contains(body, "missing_role") {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	now := time.Now()
	rejected := []struct {
		name  string
		token string
	}{
		{"expired", a.idp.rs256("k1", with(valid, "exp", now.Add(-time.Hour).Unix()))},
		{"not yet valid", a.idp.rs256("k1", with(valid, "nbf", now.Add(time.Hour).Unix()))},
		{"wrong issuer", a.idp.rs256("k1", with(valid, "iss", "https://evil.test/"))},
		{"wrong audience", a.idp.rs256("k1", with(valid, "aud", "other"))},
		{"no exp", a.idp.rs256("k1", with(valid, "exp", nil))},
		{"bad signature", a.idp.rs256("k1", valid)[:len(a.idp.rs256("k1", valid))-4] + "AAAA"},
		{"alg none", none(valid)},
		{"HS256 signed with the RSA public key", a.idp.hs256WithPublicKey("k1", valid)},
		{"signed by a key the IdP does not publish", a.idp.rs256("stranger", valid)},
		{"garbage", "not-a-token"},
		{"garbage with dots", "a.b.c"},
	}
	for _, tt := range rejected {
		t.Run("401 "+tt.name, func(t *testing.T) {
			code, echo, body := a.call(t, "/users/1", bearer(tt.token))
			if code != 401 || echo != nil || !strings.Contains(body, `"reason"`) {
				t.Fatalf("status %d, reached upstream %v, body %s", code, echo != nil, body)
			}
		})
	}
	t.Run("two Authorization headers are 401", func(t *testing.T) {
		tok := a.idp.rs256("k1", valid)
		resp, err := a.client.DoHeader(testCtx(t, 10*time.Second), "GET", fmt.Sprintf("http://127.0.0.1:%d/users/1", a.port), "",
			http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, nil)
		if err != nil || resp.Status != 401 {
			t.Fatalf("status %v, err %v", resp, err)
		}
	})
	t.Run("no credentials is 401 with a challenge", func(t *testing.T) {
		resp, err := a.client.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d/users/1", a.port), "", nil)
		if err != nil || resp.Status != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("resp %+v err %v", resp, err)
		}
	})
}

func TestAuthJWKSRotationAndOutage(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	a := startAuthStack(t)
	// The IdP rotates: a token signed with a new kid is accepted after the
	// service refreshes the JWKS (on demand, rate-limited), no restart.
	a.idp.addKey("k2")
	ctx := testCtx(t, 30*time.Second)
	err := harness.WaitFor(ctx, func() (bool, error) {
		code, _, _ := a.call(t, "/users/1", bearer(a.idp.rs256("k2", a.idp.claims("bob", "user"))))
		return code == 200, nil
	})
	if err != nil {
		t.Fatalf("token with the rotated-in kid never accepted: %v", err)
	}
	// The JWKS endpoint goes down: keys already fetched keep working, for
	// tokens never seen before too.
	a.idp.down.Store(true)
	for _, kid := range []string{"k1", "k2"} {
		if code, _, body := a.call(t, "/users/1", bearer(a.idp.rs256(kid, a.idp.claims("carol", "user")))); code != 200 {
			t.Fatalf("with the JWKS endpoint down, a %s token got %d: %s", kid, code, body)
		}
	}
}

func TestAuthOAuth2Introspection(t *testing.T) {
	a := startAuthStack(t)
	a.idp.opaque("tok-read", true, "orders:read profile", "partner-app")
	a.idp.opaque("tok-noscope", true, "profile", "partner-app")
	a.idp.opaque("tok-inactive", false, "orders:read", "partner-app")
	tests := []struct {
		token    string
		wantCode int
	}{
		{"tok-read", 200},
		{"tok-noscope", 403},
		{"tok-inactive", 401},
		{"tok-unknown", 401},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			code, echo, body := a.call(t, "/orders/1", bearer(tt.token))
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d; body %s", code, tt.wantCode, body)
			}
			if code == 200 && hdr(echo, "x-user-id") != "partner:partner-app" {
				t.Errorf("upstream x-user-id = %q", hdr(echo, "x-user-id"))
			}
		})
	}
	// A JWT is not an accepted method on this route.
	if code, _, _ := a.call(t, "/orders/1", bearer(a.idp.rs256("k1", a.idp.claims("alice", "user")))); code != 401 {
		t.Errorf("a JWT on an oauth2-only route: %d, want 401", code)
	}
}

func TestAuthAPIKeys(t *testing.T) {
	a := startAuthStack(t)
	var created struct {
		Key    string `json:"key"`
		Record struct {
			ID string `json:"id"`
		} `json:"record"`
	}
	// Opaque: this test covers the checksum (TestAuthSignedAPIKeys the
	// signed form, the default).
	out := a.cli(0, "keys", "create", "--consumer", "acme", "--tier", "pro", "--tenant", "t1", "--roles", "user,admin", "-o", "json",
		"--format", "opaque")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	key := map[string]string{"x-api-key": created.Key}
	t.Run("valid key", func(t *testing.T) {
		code, echo, body := a.call(t, "/users/1", map[string]string{"x-api-key": created.Key, "x-consumer-tier": "enterprise"})
		// API keys are the gateway's own identities: bare, without a namespace.
		if code != 200 || hdr(echo, "x-user-id") != "acme" || hdr(echo, "x-consumer-tier") != "pro" {
			t.Fatalf("status %d, body %s", code, body)
		}
		if hdr(echo, "x-api-key") != "" {
			t.Error("the API key was forwarded to the upstream")
		}
	})
	t.Run("Authorization ApiKey form", func(t *testing.T) {
		if code, _, body := a.call(t, "/admin/1", map[string]string{"Authorization": "ApiKey " + created.Key}); code != 200 {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	t.Run("malformed key is 401 without a Redis lookup", func(t *testing.T) {
		// Revocation pings run in the background, so count the lookup
		// command itself rather than all commands.
		before := redisCalls(t, a.redis, "hgetall")
		code, _, body := a.call(t, "/users/1", map[string]string{"x-api-key": "tg_not-a-key"})
		if code != 401 || !strings.Contains(body, "malformed_key") {
			t.Fatalf("status %d, body %s", code, body)
		}
		last := "x"
		if strings.HasSuffix(created.Key, last) { // the key itself may end in "x"
			last = "y"
		}
		wrongSum := created.Key[:len(created.Key)-1] + last
		if code, _, _ := a.call(t, "/users/1", map[string]string{"x-api-key": wrongSum}); code != 401 {
			t.Fatalf("key with a bad checksum: %d", code)
		}
		if after := redisCalls(t, a.redis, "hgetall"); after != before {
			t.Errorf("malformed keys cost %d Redis lookups", after-before)
		}
		// A well-formed key does cost one, so the counter is the right one.
		if code, _, _ := a.call(t, "/users/1", map[string]string{"x-api-key": otherKey(t)}); code != 401 {
			t.Fatalf("unknown key: %d", code)
		}
		if after := redisCalls(t, a.redis, "hgetall"); after != before+1 {
			t.Errorf("an unknown key cost %d lookups, want 1", after-before)
		}
	})
	t.Run("revoked within a second", func(t *testing.T) {
		a.cli(0, "keys", "revoke", created.Record.ID)
		ctx := testCtx(t, time.Second)
		if err := harness.WaitFor(ctx, func() (bool, error) {
			code, _, _ := a.call(t, "/users/1", key)
			return code == 401, nil
		}); err != nil {
			t.Fatalf("revoked key still accepted after 1s: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		out := a.cli(0, "keys", "create", "--consumer", "shortlived", "--roles", "user", "--expires", "1s", "-o", "json")
		var k struct{ Key string }
		_ = json.Unmarshal([]byte(out), &k)
		ctx := testCtx(t, 10*time.Second)
		if err := harness.WaitFor(ctx, func() (bool, error) {
			code, _, body := a.call(t, "/users/1", map[string]string{"x-api-key": k.Key})
			return code == 401 && strings.Contains(body, "expired_key"), nil
		}); err != nil {
			t.Fatalf("an expired key was not refused: %v", err)
		}
	})
}

func TestAuthPublicRouteAndFailClosed(t *testing.T) {
	a := startAuthStack(t)
	code, echo, body := a.call(t, "/health", map[string]string{"X-User-ID": "mallory", "X-User-Roles": "admin", "X-Tenant-Id": "evil"})
	if code != 200 {
		t.Fatalf("public route: %d %s", code, body)
	}
	for _, h := range []string{"x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier"} {
		if v := hdr(echo, h); v != "" {
			t.Errorf("client-sent %s=%q reached the upstream of a public route", h, v)
		}
	}
	t.Run("the API-key header does not reach a public route's upstream, Authorization does", func(t *testing.T) {
		code, echo, body := a.call(t, "/health", map[string]string{"X-Api-Key": otherKey(t), "Authorization": "Basic dTpw"})
		if code != 200 || echo == nil {
			t.Fatalf("public route: %d %s", code, body)
		}
		if v := hdr(echo, "x-api-key"); v != "" {
			t.Errorf("the gateway's API-key header reached a public route's upstream: %q", v)
		}
		if v := hdr(echo, "authorization"); v != "Basic dTpw" {
			t.Errorf("Authorization on a public route = %q, want it forwarded", v)
		}
	})
	t.Run("a fake CORS preflight on a route without cors needs credentials", func(t *testing.T) {
		// Envoy answers preflights itself on routes with a CORS policy
		// (TestCORSThroughEnvoy); anywhere else an OPTIONS is a request.
		resp, err := a.client.Do(testCtx(t, 10*time.Second), "OPTIONS", fmt.Sprintf("http://127.0.0.1:%d/users/1", a.port), "",
			map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 401 || resp.Header.Get("X-Upstream") != "" {
			t.Fatalf("fake preflight without credentials: %d from upstream %q, want 401", resp.Status, resp.Header.Get("X-Upstream"))
		}
	})
	// The authz service goes away (with the control plane): Envoy keeps its
	// configuration and fails closed on protected routes only, with the
	// documented 503 body, for every request it cannot decide itself (here
	// an OAuth 2.0 route; a JWT on the /users route, which accepts JWTs and
	// API keys, is decided in Envoy: TestMixedNativeAdmitsWithoutExtAuthz).
	_ = a.cp.Kill()
	tok := a.idp.rs256("k1", a.idp.claims("alice", "user"))
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, echo, body := a.call(t, "/orders/1", bearer(tok))
		return code == 503 && echo == nil && body == authzUnavailableBody, nil
	}); err != nil {
		t.Fatalf("with the authz service down, a protected route did not fail closed: %v", err)
	}
	if code, _, _ := a.call(t, "/health", nil); code != 200 {
		t.Errorf("public route with the authz service down: %d", code)
	}
}

// redisCalls returns how many times Redis ran command (lower case).
func redisCalls(t *testing.T, addr, command string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "cmdstat_"+command+":calls="); ok {
			var n int64
			fmt.Sscan(strings.SplitN(v, ",", 2)[0], &n)
			return n
		}
	}
	return 0
}

// otherKey returns a well-formed key that no store knows.
func otherKey(t *testing.T) string {
	t.Helper()
	key, _, err := apikey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// hdr returns the upstream's view of header name, case-insensitively.
func hdr(e *upstream.Echo, name string) string {
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
