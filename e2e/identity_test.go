package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

// identityPolicy has two JWT issuers whose subjects overlap, a tier of 3
// requests a minute per consumer, and a route that needs role "user".
const identityPolicy = `version: 1
auth:
  jwt:
    - name: corp
      issuer: %q
      audiences: [%q]
      jwksUri: %q
      claims: {roles: roles}
    - name: partner
      issuer: %q
      audiences: [%q]
      jwksUri: %q
      claims: {roles: roles}
  apiKeys: {}
rateLimits:
  tiers:
    tiny: [{requests: 3, per: minute}]
  defaultTier: tiny
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo, auth: {methods: [jwt], roles: [user]}}
  - {name: mixed, match: {pathPrefix: /mixed}, backend: echo, auth: {methods: [apiKey, jwt], roles: [user]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestIdentityNamespacedByProvider: a partner IdP's sub=alice is not corp's
// alice. Through Envoy, on the native JWT path and the ext_authz path, the
// two get different x-user-id values and separate rate-limit quotas (before namespacing, the partner's alice
// reached the upstream as "alice" and drew on corp alice's quota). A role
// value holding a comma is dropped instead of reading as two roles in
// x-user-roles.
func TestIdentityNamespacedByProvider(t *testing.T) {
	corp, partner := newIDP(t), newIDP(t)
	partner.issuer = "https://partner.test/"
	up := harness.StartUpstream(t, "echo")
	redisAddr := harness.StartRedis(t)
	port := harness.FreePort(t)
	policy := fmt.Sprintf(identityPolicy, corp.issuer, idpAudience, corp.jwksURL(),
		partner.issuer, idpAudience, partner.jwksURL(), port, up.Addr())
	s := startStackWith(t, policy, stackOptions{args: []string{"--redis", "redis://" + redisAddr + "/0", "--key-pepper", "e2e-pepper-0123456789"}})
	s.envoy("public", "identity-0", "delta")
	a := &authStack{stack: s, port: port, client: harness.NewHTTPClient(false)}

	// JWT-only routes are decided in Envoy (jwt_authn and the Lua identity
	// script), routes that accept API keys too by the ext_authz service:
	// both must namespace. Each path uses its own user, as tier quotas are
	// per consumer across routes.
	for _, tt := range []struct{ path, user string }{{"/api/x", "alice"}, {"/mixed/x", "bob"}} {
		t.Run(tt.path, func(t *testing.T) { checkNamespaced(t, a, corp, partner, tt.path, tt.user) })
	}
}

// checkNamespaced sends corp's user until the tier's quota is spent, then
// partner's user of the same sub.
func checkNamespaced(t *testing.T, a *authStack, corp, partner *idp, path, user string) {
	corpUser := bearer(corp.rs256("k1", corp.claims(user, "user", "admin,root", "r\u00e9dacteur", "tab\there")))
	for i := range 3 {
		code, echo, body := a.call(t, path, corpUser)
		if code != 200 {
			t.Fatalf("corp %s, request %d: %d %s", user, i+1, code, body)
		}
		if got := hdr(echo, "x-user-id"); got != "corp:"+user {
			t.Errorf("corp %s reached the upstream as x-user-id %q, want corp:%s", user, got, user)
		}
		if got := hdr(echo, "x-user-roles"); got != "user" {
			t.Errorf("x-user-roles = %q, want user (\"admin,root\" must not read as two roles; non-ASCII and control characters are dropped too)", got)
		}
	}
	if code, _, _ := a.call(t, path, corpUser); code != 429 {
		t.Fatalf("corp %s's 4th request: %d, want 429 (tier tiny: 3 a minute)", user, code)
	}
	code, echo, body := a.call(t, path, bearer(partner.rs256("k1", partner.claims(user, "user"))))
	if code != 200 {
		t.Fatalf("partner %s after corp %s used the quota: %d %s, want 200 (a quota of its own)", user, user, code, body)
	}
	if got := hdr(echo, "x-user-id"); got != "partner:"+user {
		t.Errorf("partner %s reached the upstream as x-user-id %q, want partner:%s", user, got, user)
	}
}

// introspectionPolicy has two OAuth2 providers told apart by token prefix.
const introspectionPolicy = `version: 1
auth:
  oauth2:
    - {name: corp, tokenPrefix: corp_, introspectionUrl: %q, clientId: %q, clientSecretEnv: TEST_INTROSPECTION_SECRET}
    - {name: partner, tokenPrefix: ptr_, introspectionUrl: %q, clientId: %q, clientSecretEnv: TEST_INTROSPECTION_SECRET}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: orders, match: {pathPrefix: /orders}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestIntrospectionTokenGoesToOneProvider: through Envoy, an opaque token
// is introspected by the provider whose prefix it has and never sent to
// the other (before, every token went to every endpoint in turn until one
// knew it, so the partner saw corp's tokens, inactive ones included). An
// active answer naming no subject is refused.
func TestIntrospectionTokenGoesToOneProvider(t *testing.T) {
	corp, partner := newIDP(t), newIDP(t)
	corp.opaque("corp_live", true, "orders:read", "app-7")
	corp.mu.Lock()
	corp.tokens["corp_anon"] = map[string]any{"active": true, "scope": "orders:read"} // no sub, client_id, username
	corp.mu.Unlock()
	partner.opaque("ptr_live", true, "orders:read", "app-7")
	up := harness.StartUpstream(t, "echo")
	port := harness.FreePort(t)
	policy := fmt.Sprintf(introspectionPolicy, corp.introspectURL(), idpClientID, partner.introspectURL(), idpClientID, port, up.Addr())
	s := startStackWith(t, policy, stackOptions{env: []string{"TEST_INTROSPECTION_SECRET=" + idpClientSecret}})
	s.envoy("public", "introspect-0", "delta")
	a := &authStack{stack: s, port: port, client: harness.NewHTTPClient(false)}

	code, echo, body := a.call(t, "/orders/1", bearer("corp_live"))
	if code != 200 {
		t.Fatalf("corp token: %d %s, want 200", code, body)
	}
	if got := hdr(echo, "x-user-id"); got != "corp:app-7" {
		t.Errorf("corp token: x-user-id %q, want corp:app-7", got)
	}
	for _, tok := range []string{"corp_revoked", "corp_live2", "no-prefix"} {
		if code, _, body := a.call(t, "/orders/1", bearer(tok)); code != 401 {
			t.Errorf("%s: %d %s, want 401", tok, code, body)
		}
	}
	if code, _, body := a.call(t, "/orders/1", bearer("corp_anon")); code != 401 || !strings.Contains(body, "no_subject") {
		t.Errorf("an active token naming no subject: %d %s, want 401 no_subject", code, body)
	}
	if n := partner.introspections.Load(); n != 0 {
		t.Errorf("the partner's endpoint was sent %d of corp's (or unprefixed) tokens, want none", n)
	}
	code, echo, body = a.call(t, "/orders/1", bearer("ptr_live"))
	if code != 200 {
		t.Fatalf("partner token: %d %s, want 200", code, body)
	}
	if got := hdr(echo, "x-user-id"); got != "partner:app-7" {
		t.Errorf("partner token: x-user-id %q, want partner:app-7", got)
	}
	if n := partner.introspections.Load(); n != 1 {
		t.Errorf("the partner's endpoint got %d requests, want 1 (its own token)", n)
	}
}
