package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// luaForge is a script that tries to forge every identity header past the
// policy's textual check: names built by concatenation, and names taken
// from a client header (x-pick). Each header is both replaced and added to.
const luaForge = `
      function envoy_on_request(h)
        local hs = h:headers()
        hs:replace("x-user" .. "-id", "admin")
        hs:add("x-user" .. "-roles", "admin")
        hs:replace("x-tenant" .. "-id", "evil")
        local picked = hs:get("x-pick")
        if picked ~= nil then hs:replace(picked, "forged") end
        hs:add("x-lua-ran", "yes")
      end`

// luaGuardPolicy: JWT routes with and without the forging script, a public
// route with it, and routes whose script rewrites ext_authz's metadata. Format arguments: issuer, audience, JWKS URL, port,
// the upstream address.
const luaGuardPolicy = `version: 1
auth:
  jwt:
    - name: corp
      issuer: %q
      audiences: [%q]
      jwksUri: %q
      algorithms: [RS256]
      claims: {userId: sub, roles: roles, tenant: tid, tier: plan}
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - name: lua-jwt
    match: {pathPrefix: /lua-jwt}
    backend: echo
    auth: {methods: [jwt]}
    lua: |` + luaForge + `
  - name: lua-public
    match: {pathPrefix: /lua-public}
    backend: echo
    auth: none
    lua: |` + luaForge + `
  - name: lua-meta
    match: {pathPrefix: /lua-meta}
    backend: echo
    auth: none
    lua: |
      function envoy_on_request(h)
        h:streamInfo():dynamicMetadata():set("envoy.filters.http.ext_authz", "user_id", "admin")
        h:headers():add("x-lua-ran", "yes")
      end
  - name: lua-meta-jwt
    match: {pathPrefix: /lua-meta-jwt}
    backend: echo
    auth: {methods: [jwt]}
    lua: |
      function envoy_on_request(h)
        h:streamInfo():dynamicMetadata():set("envoy.filters.http.ext_authz", "user_id", "admin")
        h:streamInfo():dynamicMetadata():set("envoy.filters.http.ext_authz", "roles", "admin")
        h:headers():add("x-lua-ran", "yes")
      end
  - {name: plain-jwt, match: {pathPrefix: /plain-jwt}, backend: echo, auth: {methods: [jwt]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestLuaCannotForgeIdentityThroughEnvoy checks the identity guard through
// the real Envoy: whatever a route's Lua script does to the identity
// headers, the upstream sees exactly what ext_authz decided (the same as on
// a route without Lua), and no identity header at all on a public route.
func TestLuaCannotForgeIdentityThroughEnvoy(t *testing.T) {
	p := newIDP(t)
	up := harness.StartUpstream(t, "echo")
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(luaGuardPolicy, idpIssuer, idpAudience, p.jwksURL(), port, up.Addr()))
	s.envoy("public", "luaguard-0", "delta")
	a := &authStack{stack: s, idp: p, port: port, client: harness.NewHTTPClient(false)}
	identity := []string{"x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier"}
	get := func(t *testing.T, path string, h map[string]string) *upstream.Echo {
		t.Helper()
		code, echo, body := a.call(t, path, h)
		if code != 200 || echo == nil {
			t.Fatalf("%s: status %d, body %s", path, code, body)
		}
		return echo
	}
	for _, pick := range identity {
		t.Run("JWT route, script picks "+pick, func(t *testing.T) {
			h := bearer(p.rs256("k1", p.claims("alice", "user", "ops", "admin-reader")))
			h["x-pick"], h["X-User-ID"] = pick, "mallory"
			plain, lua := get(t, "/plain-jwt", h), get(t, "/lua-jwt", h)
			if hdr(lua, "x-lua-ran") != "yes" {
				t.Fatalf("the script did not run: %v", lua.Headers)
			}
			want := map[string]string{"x-user-id": "corp:alice", "x-user-roles": "user,ops,admin-reader", "x-tenant-id": "acme", "x-consumer-tier": "pro"}
			for _, k := range identity {
				if hdr(plain, k) != want[k] || hdr(lua, k) != hdr(plain, k) {
					t.Errorf("%s: without Lua %q, with Lua %q, want %q", k, hdr(plain, k), hdr(lua, k), want[k])
				}
			}
		})
		t.Run("public route, script picks "+pick, func(t *testing.T) {
			echo := get(t, "/lua-public", map[string]string{"x-pick": pick, "X-User-ID": "mallory"})
			if hdr(echo, "x-lua-ran") != "yes" {
				t.Fatalf("the script did not run: %v", echo.Headers)
			}
			for _, k := range identity {
				if v, ok := hdrPresent(echo, k); ok {
					t.Errorf("public route: upstream saw %s = %q, want no such header", k, v)
				}
			}
		})
	}
	// A script can write any namespace of the dynamic metadata, ext_authz's
	// included: the guard reads the snapshot taken before Lua ran.
	t.Run("script rewrites ext_authz's metadata", func(t *testing.T) {
		echo := get(t, "/lua-meta", nil)
		for _, k := range identity {
			if v, ok := hdrPresent(echo, k); ok || hdr(echo, "x-lua-ran") != "yes" {
				t.Errorf("public route: upstream saw %s = %q (present %v), want none; headers %v", k, v, ok, echo.Headers)
			}
		}
		echo = get(t, "/lua-meta-jwt", bearer(p.rs256("k1", p.claims("alice", "user"))))
		if hdr(echo, "x-user-id") != "corp:alice" || hdr(echo, "x-user-roles") != "user" || hdr(echo, "x-lua-ran") != "yes" {
			t.Errorf("JWT route: upstream headers %v, want x-user-id corp:alice and x-user-roles user", echo.Headers)
		}
	})
	t.Run("JWT route, caller without roles: no roles header", func(t *testing.T) {
		c := p.claims("bob")
		delete(c, "roles")
		echo := get(t, "/lua-jwt", bearer(p.rs256("k1", c)))
		if v, ok := hdrPresent(echo, "x-user-roles"); ok {
			t.Errorf("upstream saw x-user-roles = %q, want none", v)
		}
		if hdr(echo, "x-user-id") != "corp:bob" {
			t.Errorf("x-user-id = %q, want corp:bob", hdr(echo, "x-user-id"))
		}
	})
}

// hdrPresent is hdr that also tells whether the header was there at all
// (an empty value counts as present).
func hdrPresent(e *upstream.Echo, name string) (string, bool) {
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}
