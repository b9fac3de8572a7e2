package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// accessLogIdentityPolicy has every way a request gets (or does not get)
// an identity: JWT-only, API-key-only and mixed routes decided in Envoy
// (jwt_authn, the identity scripts, rbac, the RLS hop) for JWTs and signed
// keys, opaque keys decided by ext_authz with their limits in the Check
// (one hop) or none, a CORS preflight, a public route.
const accessLogIdentityPolicy = `version: 1
auth:
{{.JWT}}
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    pro: [{requests: 1000, per: minute}]
    tiny: [{requests: 1, per: minute}]
  defaultTier: pro
  mode: exact # the ext_authz cases check the decision taken in the Check
gateways:
  - name: public
    listeners: [{name: http, port: {{.Port}}, address: 127.0.0.1}]
routes:
  - name: native
    match: {pathPrefix: /native}
    backend: echo
    auth: {methods: [jwt], roles: [user]}
    cors: {allowOrigins: ["https://app.example.com"], allowMethods: [GET]}
  - {name: native-admin, match: {pathPrefix: /nadmin}, backend: echo, auth: {methods: [jwt], roles: [admin]}}
  - {name: authz, match: {pathPrefix: /authz}, backend: echo, auth: {methods: [jwt, apiKey], roles: [user]}}
  - {name: authz-nolimit, match: {pathPrefix: /anolimit}, backend: echo, auth: {methods: [jwt, apiKey], roles: [user]}, rateLimit: none}
  - {name: authz-admin, match: {pathPrefix: /aadmin}, backend: echo, auth: {methods: [jwt, apiKey], roles: [admin]}, rateLimit: none}
  - {name: keys, match: {pathPrefix: /keys}, backend: echo, auth: {methods: [apiKey], roles: [user]}}
  - {name: keys-nolimit, match: {pathPrefix: /knolimit}, backend: echo, auth: {methods: [apiKey], roles: [user]}, rateLimit: none}
  - {name: keys-admin, match: {pathPrefix: /kadmin}, backend: echo, auth: {methods: [apiKey], roles: [admin]}, rateLimit: none}
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none, rateLimit: none}
backends:
  - {name: echo, endpoints: [{{.Upstream}}]}
`

// identityKeys are the access log's identity keys.
var identityKeys = []string{"user_id", "consumer", "tenant", "tier", "auth_method"}

// forgedIdentity is what a client claims in the identity headers.
var forgedIdentity = map[string]string{"X-User-ID": "mallory", "X-Tenant-ID": "evil", "X-Consumer-Tier": "enterprise", "X-User-Roles": "admin,user"}

// TestAccessLogIdentityNeverFromClient checks, through the real Envoy,
// that the access log's identity keys hold what the request's
// authentication decided and never a value the client sent in the
// identity headers: on a public route, a CORS preflight, a request
// matching no route, refusals before any identity (401, 403 from
// ext_authz, 503 with ext_authz down), a request Envoy answers before any
// filter runs (path-normalisation redirect), and, with the caller's own
// identity, on admitted requests, a 403 from rbac after the identity
// script, and 429s from the ratelimit filter and from the ext_authz Check;
// signed API keys (decided in Envoy) likewise.
func TestAccessLogIdentityNeverFromClient(t *testing.T) {
	n := startNativeEnv(t)
	p := n.idp
	port := harness.FreePort(t)
	s := n.stack(t, n.policy(t, accessLogIdentityPolicy, port))
	e := s.envoyWith("public", "alid-0", harness.EnvoyOptions{})
	a := n.authStack(s, port)
	tok := func(sub, plan string) string {
		c := p.claims(sub, "user")
		c["plan"] = plan
		return p.rs256("k1", c)
	}
	noExp := p.claims("alice", "user")
	delete(noExp, "exp")
	id := func(sub, tier string) map[string]any {
		return map[string]any{"user_id": "corp:" + sub, "consumer": "corp:" + sub, "tenant": "acme", "tier": tier, "auth_method": "jwt"}
	}
	key := map[string]string{"x-api-key": signedKey(t, keyClaims("kim", "key00001", "pro", "user"))}
	keyID := map[string]any{"user_id": "kim", "consumer": "kim", "tenant": "t1", "tier": "pro", "auth_method": "apiKey"}
	// A signed key without a tenant: the key identity script removes the
	// tenant header and the metadata filter copies nothing, so the
	// metadata (read on /keys) has no tenant, as on JWT routes, and never
	// the client's.
	noTenant := keyClaims("nia", "key00002", "pro", "user")
	delete(noTenant, "tnt")
	keyNoTenant := map[string]string{"x-api-key": signedKey(t, noTenant)}
	keyNoTenantID := map[string]any{"user_id": "nia", "consumer": "nia", "tier": "pro", "auth_method": "apiKey"}
	opaqueKeys := map[string]string{}
	// opaque returns the headers of an opaque key (decided by ext_authz)
	// of consumer, with role user, created once.
	opaque := func(consumer, tier string) map[string]string {
		if opaqueKeys[consumer] == "" {
			var created struct{ Key string }
			out := s.cli(0, "keys", "create", "--consumer", consumer, "--tier", tier, "--roles", "user", "-o", "json", "--format", "opaque")
			if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Key, "tg_") {
				t.Fatalf("keys create --format opaque: %v: %s", err, out)
			}
			opaqueKeys[consumer] = created.Key
		}
		return map[string]string{"x-api-key": opaqueKeys[consumer]}
	}
	// An opaque key's record has no tenant: ext_authz publishes "", which
	// a header-read route leaves out and a metadata-read route (limits in
	// the Check) logs as "".
	opaqueID := func(consumer, tier string, metadataRoute bool) map[string]any {
		id := map[string]any{"user_id": consumer, "consumer": consumer, "tier": tier, "auth_method": "apiKey"}
		if metadataRoute {
			id["tenant"] = ""
		}
		return id
	}
	// The key identity script answers 503 until its table arrives over ECDS.
	if err := harness.WaitFor(testCtx(t, 30*time.Second), func() (bool, error) {
		code, _, _ := a.call(t, "/knolimit/0", key)
		return code == 200, nil
	}); err != nil {
		t.Fatalf("signed keys never admitted: %v", err)
	}
	cases := []alidCase{
		{name: "public route", path: "/open/x", status: 200},
		{name: "CORS preflight on a protected route", method: "OPTIONS", path: "/native/1", status: 200,
			headers: map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}},
		{name: "no route", path: "/nowhere", status: 404},
		{name: "native route, no token", path: "/native/1", status: 401},
		{name: "native route, token refused by the identity script", path: "/native/1", status: 401, token: p.rs256("k1", noExp)},
		{name: "native route, admitted", path: "/native/1", status: 200, token: tok("alice", "pro"), want: id("alice", "pro")},
		{name: "native route, rbac refuses the role", path: "/nadmin/1", status: 403, token: tok("alice", "pro"), want: id("alice", "pro")},
		{name: "native route, first call of a tiny tier", path: "/native/1", status: 200, token: tok("dave", "tiny"), want: id("dave", "tiny")},
		{name: "native route, over the limit (ratelimit filter)", path: "/native/1", status: 429, token: tok("dave", "tiny"), want: id("dave", "tiny")},
		{name: "mixed route, JWT admitted", path: "/anolimit/1", status: 200, token: tok("alice", "pro"), want: id("alice", "pro")},
		{name: "mixed route, JWT refused the role by rbac", path: "/aadmin/1", status: 403, token: tok("alice", "pro"), want: id("alice", "pro")},
		{name: "mixed route, first call of a tiny tier (JWT)", path: "/authz/1", status: 200, token: tok("carol", "tiny"), want: id("carol", "tiny")},
		{name: "mixed route, JWT over the limit", path: "/authz/1", status: 429, token: tok("carol", "tiny"), want: id("carol", "tiny")},
		{name: "ext_authz (opaque key), no credentials", path: "/authz/1", status: 401},
		{name: "ext_authz (opaque key), admitted", path: "/anolimit/1", status: 200, headers: opaque("olga", "pro"), want: opaqueID("olga", "pro", false)},
		{name: "ext_authz (opaque key), role refused", path: "/aadmin/1", status: 403, headers: opaque("olga", "pro")},
		{name: "ext_authz (opaque key), first call of a tiny tier", path: "/authz/1", status: 200, headers: opaque("tina", "tiny"), want: opaqueID("tina", "tiny", true)},
		{name: "ext_authz (opaque key), over the limit (in the Check)", path: "/authz/1", status: 429, headers: opaque("tina", "tiny"), want: opaqueID("tina", "tiny", true)},
		{name: "signed key, admitted (identity read from the headers)", path: "/knolimit/1", status: 200, headers: key, want: keyID},
		{name: "signed key, admitted (limits in Envoy or the Check: metadata)", path: "/keys/1", status: 200, headers: key, want: keyID},
		{name: "signed key, rbac refuses the role", path: "/kadmin/1", status: 403, headers: key, want: keyID},
		{name: "signed key without a tenant (metadata)", path: "/keys/1", status: 200, headers: keyNoTenant, want: keyNoTenantID},
		// The identity metadata filter runs on every request of a signed-key
		// route, also one ext_authz then refuses: the client's identity
		// headers must not reach it.
		{name: "signed-key route, no credentials (metadata)", path: "/keys/1", status: 401},
		{name: "signed-key route, unknown opaque key (metadata)", path: "/keys/1", status: 401,
			headers: map[string]string{"x-api-key": "tg_unknownunknownunknown0"}},
		{name: "garbled signed key", path: "/knolimit/1", status: 401, headers: map[string]string{"x-api-key": "tg.x.y.z"}},
		// Envoy answers an escaped slash with a redirect before any filter
		// runs: the client's identity headers are still in the request.
		{name: "redirect before any filter", path: "/open/a%2Fb", status: 307},
	}
	for i := range cases {
		cases[i].run(t, a, e, i)
	}
	t.Run("ext_authz down: 503", func(t *testing.T) {
		_ = a.cp.Kill()
		c := alidCase{name: "ext_authz down", path: "/anolimit/1", status: 503, headers: opaque("olga", "pro")}
		err := harness.WaitFor(testCtx(t, 20*time.Second), func() (bool, error) {
			return c.send(t, a, len(cases)) == 503, nil
		})
		if err != nil {
			t.Fatalf("ext_authz down: no 503: %v", err)
		}
		c.check(t, e, len(cases))
	})
	for _, line := range strings.Split(e.Logs(), "\n") {
		for _, forged := range []string{"mallory", "evil", "enterprise"} {
			if strings.HasPrefix(line, "{") && strings.Contains(line, forged) {
				t.Errorf("access log line holds the client's %q: %s", forged, line)
			}
		}
	}
}

// alidCase is one request of TestAccessLogIdentityNeverFromClient, sent
// with the forged identity headers; want is the identity its access log
// line must hold (nil: none).
type alidCase struct {
	name, method, path, token string
	headers                   map[string]string
	status                    int
	want                      map[string]any
}

func (c alidCase) run(t *testing.T, a *authStack, e *harness.Envoy, i int) {
	t.Run(c.name, func(t *testing.T) {
		if got := c.send(t, a, i); got != c.status {
			t.Fatalf("status %d, want %d", got, c.status)
		}
		c.check(t, e, i)
	})
}

// send sends the request, marked with case=i in its query, and returns
// the status.
func (c alidCase) send(t *testing.T, a *authStack, i int) int {
	t.Helper()
	h := map[string]string{}
	for k, v := range forgedIdentity {
		h[k] = v
	}
	for k, v := range c.headers {
		h[k] = v
	}
	if c.token != "" {
		h["Authorization"] = "Bearer " + c.token
	}
	method := c.method
	if method == "" {
		method = "GET"
	}
	resp, err := a.client.Do(testCtx(t, 10*time.Second), method, fmt.Sprintf("http://127.0.0.1:%d%s?case=%d", a.port, c.path, i), "", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

// check finds the last access log line of case i and compares its
// identity keys with c.want.
func (c alidCase) check(t *testing.T, e *harness.Envoy, i int) {
	t.Helper()
	marker := fmt.Sprintf("?case=%d", i)
	var line map[string]any
	err := harness.WaitFor(testCtx(t, 30*time.Second), func() (bool, error) {
		line = nil
		for _, l := range strings.Split(e.Logs(), "\n") {
			if m := parseLine(l); m != nil && m["status"] == float64(c.status) && strings.HasSuffix(fmt.Sprint(m["path"]), marker) {
				line = m
			}
		}
		return line != nil, nil
	})
	if err != nil {
		t.Fatalf("no access log line with status %d and path ending %s: %v", c.status, marker, err)
	}
	for _, k := range identityKeys {
		if want := c.want[k]; line[k] != want {
			t.Errorf("access log %s = %#v, want %#v (line %v)", k, line[k], want, line)
		}
	}
}

// parseLine decodes a JSON access log line, nil for other lines.
func parseLine(l string) map[string]any {
	var m map[string]any
	if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &m) != nil {
		return nil
	}
	return m
}
