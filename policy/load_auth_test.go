package policy

import (
	"reflect"
	"slices"
	"testing"
)

// authBase is base plus a public route and the start of an auth section:
// cases append the section's fields from line 6.
const authBase = base + "routes: [{name: r, backend: be, auth: none}]\nauth:\n"

func TestLoadAuthShapeErrors(t *testing.T) {
	bomb := "  jwt:\n    - name: corp\n      issuer: https://idp/\n      jwks:\n        keys: [{kty: RSA}]\n" +
		"        a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n        d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "route auth is neither none nor a mapping",
			src:  base + "routes:\n  - {name: r, backend: be, auth: public}\n",
			want: []string{`5:34 error routes[0].auth: expected "none" or a mapping, got string "public"`},
		},
		{
			name: "route auth none is case-sensitive",
			src:  base + "routes:\n  - {name: r, backend: be, auth: None}\n",
			want: []string{`5:34 error routes[0].auth: expected "none" or a mapping, got string "None"; did you mean "none"?`},
		},
		{
			name: "route auth as a list or a boolean",
			src:  base + "routes:\n  - {name: r, backend: be, auth: [jwt]}\n  - {name: s, backend: be, auth: false, match: {path: /s}}\n",
			want: []string{
				`5:34 error routes[0].auth: expected "none" or a mapping, got a list`,
				`6:34 error routes[1].auth: expected "none" or a mapping, got bool false`,
			},
		},
		{
			name: "unknown route auth field suggests the closest",
			src:  base + "routes:\n  - {name: r, backend: be, auth: {method: [jwt]}}\nauth: {apiKeys: {}}\n",
			want: []string{`5:35 error routes[0].auth.method: unknown field "method"; did you mean "methods"?`},
		},
		{
			name: "route auth field types",
			src:  base + "auth: {apiKeys: {}}\nroutes:\n  - {name: r, backend: be, auth: {methods: apiKey, forwardCredentials: \"yes\", roles: [\"\"]}}\n",
			want: []string{
				`6:44 error routes[0].auth.methods: expected a list, got string "apiKey"`,
				`6:72 error routes[0].auth.forwardCredentials: expected true or false, got string "yes"`,
				`6:87 error routes[0].auth.roles[0]: empty string`,
			},
		},
		{
			name: "unknown provider field suggests the closest",
			src:  authBase + "  jwt: [{name: corp, issuer: https://idp/, jwksUrl: https://idp/keys}]\n",
			want: []string{
				`6:10 error auth.jwt[0]: jwt provider "corp" has no keys: set jwksUri or jwks`,
				`6:44 error auth.jwt[0].jwksUrl: unknown field "jwksUrl"; did you mean "jwksUri"?`,
			},
		},
		{
			name: "missing required provider fields",
			src:  authBase + "  jwt: [{name: corp, jwksUri: https://idp/keys}]\n  oauth2:\n    - name: partner\n      introspectionUrl: https://idp/i\n",
			want: []string{
				`6:10 error auth.jwt[0].issuer: missing required field "issuer"`,
				`8:7 error auth.oauth2[0].clientId: missing required field "clientId"`,
				`8:7 error auth.oauth2[0].clientSecretEnv: missing required field "clientSecretEnv"`,
			},
		},
		{
			name: "jwks is a string or a mapping",
			src:  authBase + "  jwt: [{name: corp, issuer: https://idp/, jwks: 5}]\n",
			want: []string{`6:50 error auth.jwt[0].jwks: expected a string or a mapping, got integer 5`},
		},
		{
			name: "jwks values must have a JSON equivalent",
			src:  authBase + "  jwt: [{name: corp, issuer: https://idp/, jwks: {keys: [{kty: RSA, x: .inf}]}}]\n",
			want: []string{`6:72 error auth.jwt[0].jwks.keys[0].x: infinity .inf has no JSON equivalent`},
		},
		{
			name: "jwks duplicate keys",
			src:  authBase + "  jwt: [{name: corp, issuer: https://idp/, jwks: {keys: [{kty: RSA, kty: EC}]}}]\n",
			want: []string{`6:69 error auth.jwt[0].jwks.keys[0].kty: duplicate field "kty" (first set at line 6)`},
		},
		{
			name: "jwks alias cycle",
			src:  authBase + "  jwt: [{name: corp, issuer: https://idp/, jwks: &k {keys: [*k]}}]\n",
			want: []string{`6:54 error auth.jwt[0].jwks: the key set is nested more than 32 levels deep`},
		},
		{
			name: "jwks alias bomb",
			src:  authBase + bomb,
			want: []string{`10:9 error auth.jwt[0].jwks: the key set has more than 10000 values`},
		},
		{
			name: "statusOnError types",
			src: "version: 1\ngateways:\n  - {name: a, listeners: [{name: http, port: 80}], auth: {statusOnError: \"403\"}}\n" +
				"  - {name: b, listeners: [{name: http, port: 81}], auth: {statusOnError: 0}}\n",
			want: []string{
				`3:74 error gateways[0].auth.statusOnError: expected an integer, got string "403"`,
				`4:74 error gateways[1].auth.statusOnError: statusOnError must be 403 or 503, got 0`,
			},
		},
		{
			name: "apiKeys and identityHeaders are set once across documents",
			src: authBase + "  apiKeys: {}\n  identityHeaders: {userId: x-uid}\n---\nversion: 1\n" +
				"auth:\n  apiKeys: {header: x-key}\n  identityHeaders:\n    userId: x-user\n",
			want: []string{
				`11:13 error auth.apiKeys: duplicate field "apiKeys" (first set at p.yaml:6:12)`,
				`13:5 error auth.identityHeaders: duplicate field "identityHeaders" (first set at p.yaml:7:21)`,
			},
		},
		{
			name: "provider lists continue across documents",
			src: authBase + "  jwt: [{name: corp, issuer: https://a/, jwksUri: https://a/k}]\n---\nversion: 1\n" +
				"auth:\n  jwt: [{name: corp, issuer: https://b/, jwksUri: https://b/k}]\n",
			want: []string{`10:16 error auth.jwt[1].name: duplicate jwt provider name "corp"; first defined at auth.jwt[0].name (p.yaml:6:16)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(buildString(tt.src)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadRouteAuthStringSuggestsTheForm(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{value: "public", want: "write `auth: none` for a public route, or a mapping such as `auth: {methods: [jwt], roles: [user]}`"},
		{value: "apikey", want: "write `auth: {methods: [apiKey]}` to accept only apiKey, or `auth: none` for a public route"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			ds := buildString(base + "auth: {apiKeys: {}}\nroutes: [{name: r, backend: be, auth: " + tt.value + "}]\n")
			if len(ds) != 1 || ds[0].Detail != tt.want {
				t.Errorf("diagnostics %q, want one with the fix %q", ds, tt.want)
			}
		})
	}
}

func TestLoadAuthModel(t *testing.T) {
	src := base + `routes:
  - {name: r, backend: be, auth: {methods: [oauth2, jwt], roles: [admin], scopes: [orders:read, "a:b"], forwardCredentials: true}}
  - {name: s, backend: be, auth: none, match: {path: /s}}
auth:
  jwt:
    - name: corp
      issuer: https://idp/
      audiences: [urn:example:api]
      jwks: {keys: [{kty: RSA, n: "0vx7", e: AQAB, "x5c": [abc], ext: true, v: 1.5, w: null}]}
      algorithms: [RS256]
      claims: {roles: groups}
  apiKeys: {}
  oauth2: [{name: p, introspectionUrl: https://idp/i, clientId: c, clientSecretEnv: C_SECRET, cacheTtl: 1m}]
  identityHeaders: {tier: x-plan}
`
	p, ds := Load([]File{{Name: "p.yaml", Content: []byte(src)}})
	if len(ds) != 0 {
		t.Fatalf("Load: %q", render(ds))
	}
	want := &Auth{
		JWT: []JWTProvider{{
			Name: "corp", Issuer: "https://idp/", Audiences: []string{"urn:example:api"},
			JWKS:       `{"keys":[{"kty":"RSA","n":"0vx7","e":"AQAB","x5c":["abc"],"ext":true,"v":1.5,"w":null}]}`,
			Algorithms: []string{"RS256"}, Claims: ClaimMap{Roles: "groups"},
		}},
		APIKeys: &APIKeys{},
		OAuth2: []OAuth2Provider{{
			Name: "p", IntrospectionURL: "https://idp/i", ClientID: "c", ClientSecretEnv: "C_SECRET", CacheTTL: "1m",
		}},
		IdentityHeaders: &IdentityHeaders{Tier: "x-plan"},
	}
	if !reflect.DeepEqual(p.Auth, want) {
		t.Errorf("auth:\n got %+v\nwant %+v", p.Auth, want)
	}
	routeAuth := []*RouteAuth{
		{Methods: []string{"oauth2", "jwt"}, Roles: []string{"admin"}, Scopes: []string{"orders:read", "a:b"}, ForwardCredentials: true},
		{Public: true},
	}
	for i, r := range p.Routes {
		if !reflect.DeepEqual(r.Auth, routeAuth[i]) {
			t.Errorf("routes[%d].auth = %+v, want %+v", i, r.Auth, routeAuth[i])
		}
	}
}

func TestLoadColonScalarOnlyUndoesTheSplit(t *testing.T) {
	tests := []struct {
		name string
		list string
		want []string
		errs []string
	}{
		{name: "adjacent plain scalars", list: "[orders:read, urn:a:b, tier:1, é:x]", want: []string{"orders:read", "urn:a:b", "tier:1", "é:x"}},
		{name: "a real mapping stays a mapping", list: "[a: b]", want: []string{""},
			errs: []string{`4:49 error routes[0].auth.scopes[0]: expected a string, got a mapping`}},
		{name: "a quoted key stays a mapping", list: `["a":b]`, want: []string{""},
			errs: []string{`4:49 error routes[0].auth.scopes[0]: expected a string, got a mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base + "routes: [{name: r, backend: be, auth: {scopes: " + tt.list + "}}]\nauth: {apiKeys: {}}\n"
			p, ds := Load([]File{{Name: "p.yaml", Content: []byte(src)}})
			if got := render(ds); !slices.Equal(got, tt.errs) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.errs)
			}
			if got := p.Routes[0].Auth.Scopes; !slices.Equal(got, tt.want) {
				t.Errorf("scopes = %q, want %q", got, tt.want)
			}
		})
	}
}
