package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

func TestCompileAuthDefaults(t *testing.T) {
	src := base + `auth:
  jwt: [{name: corp, issuer: https://idp/, jwksUri: https://idp/k}]
  apiKeys: {}
  oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: S}]
routes: [{name: r, backend: be}]
`
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	want := ir.Auth{
		JWT: []ir.JWTProvider{{
			Name: "corp", Namespace: "corp", Issuer: "https://idp/", JWKSURI: "https://idp/k",
			Algorithms: []string{"ES256", "ES384", "EdDSA", "PS256", "PS384", "RS256", "RS384", "RS512"},
			ClockSkew:  30 * time.Second, MaxLifetime: 24 * time.Hour, Claims: ir.ClaimMap{UserID: "sub"},
		}},
		APIKeys: &ir.APIKeys{Header: "x-api-key"},
		OAuth2: []ir.OAuth2Provider{{
			Name: "p", Namespace: "p", IntrospectionURL: "https://p/i", ClientID: "c", ClientSecretEnv: "S", CacheTTL: 30 * time.Second,
			MaxConcurrent: 64,
		}},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
	}
	if !reflect.DeepEqual(cfg.Auth, want) {
		got, _ := json.Marshal(cfg.Auth)
		wantJSON, _ := json.Marshal(want)
		t.Errorf("auth:\n got %s\nwant %s", got, wantJSON)
	}
	gw := cfg.Gateways[0]
	if want := (ir.GatewayAuth{StatusOnError: 503, Timeout: 200 * time.Millisecond}); gw.Auth != want {
		t.Errorf("gateway auth = %+v, want %+v", gw.Auth, want)
	}
	route := gw.VirtualHosts[0].Routes[0]
	if want := []string{"apiKey", "jwt", "oauth2"}; !slices.Equal(route.Auth.Methods, want) || route.Auth.Public {
		t.Errorf("route auth = %+v, want methods %q", route.Auth, want)
	}
	if !gw.NeedsAuthz() {
		t.Error("NeedsAuthz() = false for a gateway with a protected route")
	}
}

func TestCompileRouteAuth(t *testing.T) {
	const (
		jwtList    = "jwt: [{name: corp, issuer: https://idp/, jwksUri: https://idp/k}]"
		oauth2List = "oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: S}]"

		jwtOnly   = "auth: {" + jwtList + "}\n"
		keysOnly  = "auth: {apiKeys: {}}\n"
		allThree  = "auth: {apiKeys: {}, " + jwtList + ", " + oauth2List + "}\n"
		jwtOAuth2 = "auth: {" + jwtList + ", " + oauth2List + "}\n"
	)
	tests := []struct {
		name  string
		auth  string // the policy's auth section
		route string // the route's auth field, if any
		want  ir.RouteAuth
	}{
		{name: "no block accepts the only method", auth: keysOnly, want: ir.RouteAuth{Methods: []string{"apiKey"}}},
		{name: "no block accepts every method, sorted", auth: jwtOAuth2, want: ir.RouteAuth{Methods: []string{"jwt", "oauth2"}}},
		{name: "none is public", auth: allThree, route: ", auth: none", want: ir.RouteAuth{Public: true}},
		{name: "none without any method", route: ", auth: none", want: ir.RouteAuth{Public: true}},
		{
			name: "methods, roles and scopes are sorted", auth: allThree,
			route: ", auth: {methods: [oauth2, apiKey], roles: [b, a], scopes: [y, x], forwardCredentials: true}",
			want: ir.RouteAuth{
				Methods: []string{"apiKey", "oauth2"}, Roles: []string{"a", "b"}, Scopes: []string{"x", "y"}, ForwardCredentials: true,
			},
		},
		{
			name: "a block without methods accepts every method", auth: jwtOnly, route: ", auth: {roles: [admin]}",
			want: ir.RouteAuth{Methods: []string{"jwt"}, Roles: []string{"admin"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base + tt.auth + "routes: [{name: r, backend: be" + tt.route + "}]\n"
			cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
			if got := cfg.Gateways[0].VirtualHosts[0].Routes[0].Auth; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("route auth = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCompilePublicGatewayNeedsNoAuthz(t *testing.T) {
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(base + "routes: [{name: r, backend: be, auth: none}]\n")}})
	if cfg.Gateways[0].NeedsAuthz() {
		t.Error("NeedsAuthz() = true for a gateway whose routes are all public")
	}
}

// TestCompileAuthIgnoresListOrder reverses every auth list of
// valid_auth.yaml: the IR must not change, nor the policy itself.
func TestCompileAuthIgnoresListOrder(t *testing.T) {
	p, ds := Load(readFiles(t, "testdata/valid_auth.yaml"))
	if len(ds) != 0 {
		t.Fatal(ds.Err())
	}
	want := Compile(p).Hash()
	a := p.Auth
	slices.Reverse(a.JWT)
	slices.Reverse(a.OAuth2)
	for i := range a.JWT {
		slices.Reverse(a.JWT[i].Audiences)
		slices.Reverse(a.JWT[i].Algorithms)
	}
	for i := range a.OAuth2 {
		slices.Reverse(a.OAuth2[i].Audiences)
	}
	for _, r := range p.Routes {
		if r.Auth != nil {
			slices.Reverse(r.Auth.Methods)
			slices.Reverse(r.Auth.Roles)
			slices.Reverse(r.Auth.Scopes)
		}
	}
	before := slices.Clone(a.JWT[0].Algorithms)
	if got := Compile(p).Hash(); got != want {
		t.Errorf("hash %s after reversing the auth lists, want %s", got, want)
	}
	if !slices.Equal(a.JWT[0].Algorithms, before) {
		t.Errorf("Compile sorted the policy's algorithms in place: %q, was %q", a.JWT[0].Algorithms, before)
	}
}

func TestCompileJWKSIsCompactJSON(t *testing.T) {
	const want = `{"keys":[{"kty":"RSA","n":"0vx7","e":"AQAB"}]}`
	tests := []struct {
		name string
		jwks string
	}{
		{name: "mapping", jwks: "{keys: [{kty: RSA, n: 0vx7, e: AQAB}]}"},
		{name: "block mapping", jwks: "\n        keys:\n          - kty: RSA\n            n: \"0vx7\"\n            e: AQAB\n"},
		{name: "JSON text", jwks: `'{ "keys": [ { "kty": "RSA", "n": "0vx7", "e": "AQAB" } ] }'`},
		{name: "literal block", jwks: "|\n        {\"keys\": [\n          {\"kty\": \"RSA\", \"n\": \"0vx7\", \"e\": \"AQAB\"}\n        ]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base + "routes: [{name: r, backend: be}]\nauth:\n  jwt:\n    - name: corp\n      issuer: https://idp/\n      jwks: " + tt.jwks + "\n"
			cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
			if got := cfg.Auth.JWT[0].JWKS; got != want {
				t.Errorf("JWKS = %s, want %s", got, want)
			}
		})
	}
}

// TestCompileJWKSRefresh: a provider's jwksRefresh reaches the IR; left
// out it is 0 there (the verifier's default, 30 s), so the IR, and the
// version id, of a policy without it are what they were before the field.
func TestCompileJWKSRefresh(t *testing.T) {
	src := base + "routes: [{name: r, backend: be}]\nauth:\n  jwt:\n" +
		"    - {name: a, issuer: https://a/, jwksUri: https://a/k, jwksRefresh: 10s}\n" +
		"    - {name: b, issuer: https://b/, jwksUri: https://b/k}\n"
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	if a, b := cfg.Auth.JWT[0].JWKSRefresh, cfg.Auth.JWT[1].JWKSRefresh; a != 10*time.Second || b != 0 {
		t.Errorf("jwksRefresh compiled to %s and %s, want 10s and 0", a, b)
	}
	j, err := json.Marshal(cfg.Auth.JWT[1])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(j), "jwksRefresh") {
		t.Errorf("a provider without jwksRefresh encodes it: %s", j)
	}
}
