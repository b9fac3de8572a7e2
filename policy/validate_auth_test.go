package policy

import (
	"slices"
	"testing"
)

// runCases builds prefix + each case's src and compares the diagnostics.
func runCases(t *testing.T, prefix string, tests []struct {
	name string
	src  string
	want []string
}) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(buildString(prefix + tt.src)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// jwt is a one-provider jwt list on line 6 of authBase, with more fields.
func jwt(fields string) string {
	return "  jwt: [{name: corp, issuer: https://idp/, " + fields + "}]\n"
}

func TestValidateJWT(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "names follow the name rule and are unique",
			src: "  jwt:\n    - {name: Corp_1, issuer: https://a/, jwksUri: https://a/k}\n" +
				"    - {name: corp, issuer: https://b/, jwksUri: https://b/k}\n    - {name: corp, issuer: https://c/, jwksUri: https://c/k}\n",
			want: []string{
				`7:14 error auth.jwt[0].name: invalid jwt provider name "Corp_1"`,
				`9:14 error auth.jwt[2].name: duplicate jwt provider name "corp"; first defined at auth.jwt[1].name (p.yaml:8:14)`,
			},
		},
		{
			name: "issuers are unique",
			src:  "  jwt:\n    - {name: a, issuer: https://idp/, jwksUri: https://a/k}\n    - {name: b, issuer: https://idp/, jwksUri: https://b/k}\n",
			want: []string{`8:25 error auth.jwt[1].issuer: duplicate issuer "https://idp/"; first defined at auth.jwt[0].issuer (p.yaml:7:25)`},
		},
		{
			name: "keys are required",
			src:  jwt("algorithms: [RS256]"),
			want: []string{`6:10 error auth.jwt[0]: jwt provider "corp" has no keys: set jwksUri or jwks`},
		},
		{
			name: "only one key source",
			src:  jwt(`jwksUri: https://idp/k, jwks: '{"keys": [{"kty": "RSA"}]}'`),
			want: []string{`6:10 error auth.jwt[0]: jwt provider "corp" sets both jwksUri and jwks`},
		},
		{
			name: "jwksUri is absolute",
			src:  jwt("jwksUri: idp.example.com/keys"),
			want: []string{`6:53 error auth.jwt[0].jwksUri: invalid jwksUri "idp.example.com/keys": not an absolute URL: it needs http:// or https://`},
		},
		{
			name: "jwksUri is http or https",
			src:  jwt("jwksUri: ftp://idp/keys"),
			want: []string{`6:53 error auth.jwt[0].jwksUri: invalid jwksUri "ftp://idp/keys": scheme "ftp" is not http or https`},
		},
		{
			name: "jwksUri has a host",
			src:  jwt("jwksUri: \"https:///keys\""),
			want: []string{`6:53 error auth.jwt[0].jwksUri: invalid jwksUri "https:///keys": no host`},
		},
		{
			name: "jwksUri holds no credentials",
			src:  jwt("jwksUri: https://user:pw@idp/keys"),
			want: []string{`6:53 error auth.jwt[0].jwksUri: invalid jwksUri "https://user:pw@idp/keys": a URL in the policy must not hold credentials`},
		},
		{
			name: "jwksUri is a URL",
			src:  jwt("jwksUri: \"https://idp:port/keys\""),
			want: []string{`6:53 error auth.jwt[0].jwksUri: invalid jwksUri "https://idp:port/keys": invalid port ":port" after host`},
		},
		{
			name: "durations",
			src: "  jwt:\n    - {name: a, issuer: https://a/, jwksUri: https://a/k, clockSkew: 6m, maxLifetime: 0s}\n" +
				"    - {name: b, issuer: https://b/, jwksUri: https://b/k, clockSkew: -1s, maxLifetime: forever}\n" +
				"    - {name: c, issuer: https://c/, jwksUri: https://c/k, clockSkew: 0s, maxLifetime: 720h}\n",
			want: []string{
				`7:70 error auth.jwt[0].clockSkew: clockSkew must be between 0s and 5m, got 6m`,
				`7:87 error auth.jwt[0].maxLifetime: maxLifetime must be greater than 0, got 0s`,
				`8:70 error auth.jwt[1].clockSkew: clockSkew must be between 0s and 5m, got -1s`,
				`8:88 error auth.jwt[1].maxLifetime: invalid duration "forever"`,
			},
		},
		{
			name: "jwksRefresh",
			src: "  jwt:\n    - {name: a, issuer: https://a/, jwksUri: https://a/k, jwksRefresh: 1s}\n" +
				"    - {name: b, issuer: https://b/, jwksUri: https://b/k, jwksRefresh: 10m}\n" +
				"    - {name: c, issuer: https://c/, jwks: {keys: []}, jwksRefresh: 30s}\n" +
				"    - {name: d, issuer: https://d/, jwksUri: https://d/k, jwksRefresh: 5s}\n",
			want: []string{
				`7:72 error auth.jwt[0].jwksRefresh: jwksRefresh must be between 5s and 5m, got 1s`,
				`8:72 error auth.jwt[1].jwksRefresh: jwksRefresh must be between 5s and 5m, got 10m`,
				`9:44 error auth.jwt[2].jwks: jwks "keys" is empty`,
				`9:68 error auth.jwt[2].jwksRefresh: jwt provider "c" sets jwksRefresh without jwksUri`,
			},
		},
		{
			name: "audiences",
			src: jwt("jwksUri: https://idp/k, audiences: []") +
				"  oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: S, audiences: [a, b, a]}]\n",
			want: []string{
				`6:79 error auth.jwt[0].audiences: audiences is empty`,
				`7:104 error auth.oauth2[0].audiences[2]: duplicate audience "a"; first listed at auth.oauth2[0].audiences[0] (p.yaml:7:98)`,
			},
		},
	})
}

func TestValidateJWKS(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "jwks is JSON",
			src:  jwt("jwks: 'not json'"),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks is not valid JSON: invalid character 'o' in literal null (expecting 'u')`},
		},
		{
			name: "jwks is an object",
			src:  jwt("jwks: '[1]'"),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks is not a JSON object`},
		},
		{
			name: "jwks has keys",
			src:  jwt("jwks: '{}'"),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks has no "keys" array`},
		},
		{
			name: "jwks keys is an array",
			src:  jwt(`jwks: '{"keys": {"kty": "RSA"}}'`),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks "keys" is not an array`},
		},
		{
			name: "jwks keys are objects",
			src:  jwt(`jwks: '{"keys": [1]}'`),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks key 0 is not an object`},
		},
		{
			name: "jwks keys is not empty",
			src:  jwt("jwks: {keys: []}"),
			want: []string{`6:51 error auth.jwt[0].jwks: jwks "keys" is empty`},
		},
		{
			name: "jwks key is not null",
			src:  jwt(`jwks: '{"keys": [null]}'`),
			want: []string{`6:50 error auth.jwt[0].jwks: jwks key 0 is not an object`},
		},
		{
			name: "jwks key has a type",
			src:  jwt("jwks: {keys: [{n: abc}]}"),
			want: []string{`6:51 error auth.jwt[0].jwks: jwks key 0 has no "kty"`},
		},
		{
			name: "jwks holds no private key",
			src:  jwt("jwks: {keys: [{kty: EC, d: secret}]}"),
			want: []string{`6:51 error auth.jwt[0].jwks: jwks key 0 holds a private key ("d"): the policy must only hold public keys`},
		},
		{
			name: "jwks holds no symmetric key",
			src:  jwt("jwks: {keys: [{kty: oct, k: secret}]}"),
			want: []string{`6:51 error auth.jwt[0].jwks: jwks key 0 holds a symmetric key ("k"): the policy must only hold public keys`},
		},
	})
}

func TestValidateJWTAlgorithms(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "algorithms is not empty",
			src:  jwt("jwksUri: https://idp/k, algorithms: []"),
			want: []string{`6:80 error auth.jwt[0].algorithms: algorithms is empty`},
		},
		{
			name: "none is never allowed, whatever its case",
			src:  jwt("jwksUri: https://idp/k, algorithms: [none, NONE, RS256]"),
			want: []string{
				`6:81 error auth.jwt[0].algorithms[0]: algorithm "none" is never allowed: it accepts unsigned tokens`,
				`6:87 error auth.jwt[0].algorithms[1]: algorithm "NONE" is never allowed: it accepts unsigned tokens`,
			},
		},
		{
			name: "unknown and duplicate algorithms",
			src:  jwt("jwksUri: https://idp/k, algorithms: [rs256, RS256, RS256, HS257]"),
			want: []string{
				`6:81 error auth.jwt[0].algorithms[0]: unknown algorithm "rs256"; did you mean "RS256"?`,
				`6:95 error auth.jwt[0].algorithms[2]: duplicate algorithm "RS256"; first listed at auth.jwt[0].algorithms[1] (p.yaml:6:88)`,
				`6:102 error auth.jwt[0].algorithms[3]: unknown algorithm "HS257"; did you mean "HS256"?`,
			},
		},
		{
			name: "HS needs hmacSecretEnv",
			src:  jwt("jwksUri: https://idp/k, algorithms: [RS256, HS384, HS256]"),
			want: []string{`6:88 error auth.jwt[0].algorithms[1]: algorithm "HS384" needs hmacSecretEnv`},
		},
		{
			name: "hmacSecretEnv needs HS",
			src:  jwt("jwksUri: https://idp/k, hmacSecretEnv: CORP_SECRET"),
			want: []string{`6:83 error auth.jwt[0].hmacSecretEnv: hmacSecretEnv is set but no HS256, HS384 or HS512 algorithm is allowed`},
		},
		{
			name: "hmacSecretEnv is an environment variable name",
			src:  jwt("jwksUri: https://idp/k, algorithms: [HS256], hmacSecretEnv: corp-secret"),
			want: []string{`6:104 error auth.jwt[0].hmacSecretEnv: invalid environment variable name "corp-secret"`},
		},
		{
			name: "hmacSecretEnv without HS is not reported next to an unknown algorithm",
			src:  jwt("jwksUri: https://idp/k, algorithms: [hs256], hmacSecretEnv: CORP_SECRET"),
			want: []string{`6:81 error auth.jwt[0].algorithms[0]: unknown algorithm "hs256"; did you mean "HS256"?`},
		},
		{
			name: "HS with jwksUri and hmacSecretEnv is fine",
			src:  jwt("jwksUri: https://idp/k, algorithms: [HS256, RS256], hmacSecretEnv: _CORP_SECRET_2"),
			want: []string{},
		},
	})
}

func TestValidateOAuth2(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "names follow the name rule and are unique",
			src: "  oauth2:\n    - {name: p.1, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: S, tokenPrefix: x_}\n" +
				"    - {name: p, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: S, tokenPrefix: y_}\n" +
				"    - {name: p, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: S, tokenPrefix: z_}\n",
			want: []string{
				`7:14 error auth.oauth2[0].name: invalid oauth2 provider name "p.1"`,
				`9:14 error auth.oauth2[2].name: duplicate oauth2 provider name "p"; first defined at auth.oauth2[1].name (p.yaml:8:14)`,
			},
		},
		{
			name: "introspectionUrl is an absolute http(s) URL",
			src: "  oauth2:\n    - {name: a, introspectionUrl: /introspect, clientId: c, clientSecretEnv: S, tokenPrefix: a_}\n" +
				"    - {name: b, introspectionUrl: \"grpc://idp/i\", clientId: c, clientSecretEnv: S, tokenPrefix: b_}\n",
			want: []string{
				`7:35 error auth.oauth2[0].introspectionUrl: invalid introspectionUrl "/introspect": not an absolute URL: it needs http:// or https://`,
				`8:35 error auth.oauth2[1].introspectionUrl: invalid introspectionUrl "grpc://idp/i": scheme "grpc" is not http or https`,
			},
		},
		{
			name: "clientSecretEnv is an environment variable name",
			src: "  oauth2:\n    - {name: a, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: my-secret, tokenPrefix: a_}\n" +
				"    - {name: b, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: 1SECRET, tokenPrefix: b_}\n",
			want: []string{
				`7:78 error auth.oauth2[0].clientSecretEnv: invalid environment variable name "my-secret"`,
				`8:78 error auth.oauth2[1].clientSecretEnv: invalid environment variable name "1SECRET"`,
			},
		},
		{
			name: "cacheTtl range",
			src: "  oauth2:\n    - {name: a, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: S, cacheTtl: 11m, tokenPrefix: a_}\n" +
				"    - {name: b, introspectionUrl: https://a/i, clientId: c, clientSecretEnv: S, cacheTtl: 0s, tokenPrefix: b_}\n",
			want: []string{`7:91 error auth.oauth2[0].cacheTtl: cacheTtl must be between 0s and 10m, got 11m`},
		},
	})
}

func TestValidateAuthHeaders(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "API keys not in Authorization",
			src:  "  apiKeys: {header: Authorization}\n",
			want: []string{`6:21 error auth.apiKeys.header: header "Authorization" cannot carry API keys`},
		},
		{
			name: "API keys not in a pseudo-header",
			src:  "  apiKeys: {header: \":path\"}\n",
			want: []string{`6:21 error auth.apiKeys.header: pseudo-header ":path" cannot carry API keys`},
		},
		{
			name: "API key header is a header name",
			src:  "  apiKeys: {header: \"x key\"}\n",
			want: []string{`6:21 error auth.apiKeys.header: invalid header name "x key"`},
		},
		{
			name: "identity headers are valid, lower-case, regular headers",
			src:  "  identityHeaders: {userId: X-User, roles: \":authority\", tenant: \"x tenant\", tier: host}\n",
			want: []string{
				`6:29 error auth.identityHeaders.userId: identity header "X-User" must be lower case`,
				`6:44 error auth.identityHeaders.roles: pseudo-header ":authority" cannot carry identity`,
				`6:66 error auth.identityHeaders.tenant: invalid header name "x tenant"`,
				`6:84 error auth.identityHeaders.tier: header "host" cannot carry identity`,
			},
		},
		{
			name: "identity headers never carry credentials",
			src:  "  apiKeys: {header: X-Key}\n  identityHeaders: {userId: authorization, roles: x-key}\n",
			want: []string{
				`7:29 error auth.identityHeaders.userId: header "authorization" cannot carry identity`,
				`7:51 error auth.identityHeaders.roles: identity header "x-key" is the API key header`,
			},
		},
		{
			name: "identity headers are not the default API key header",
			src:  "  apiKeys: {}\n  identityHeaders: {tier: x-api-key}\n",
			want: []string{`7:27 error auth.identityHeaders.tier: identity header "x-api-key" is the API key header`},
		},
		{
			name: "the API key header is not a default identity header",
			src:  "  apiKeys: {header: X-User-Roles}\n",
			want: []string{`6:21 error auth.apiKeys.header: API key header "X-User-Roles" is the default roles identity header, which Envoy removes from every client request`},
		},
		{
			name: "x-api-key is free without API keys",
			src:  "  identityHeaders: {tier: x-api-key}\n",
			want: []string{},
		},
		{
			name: "identity headers are distinct, defaults included",
			src:  "  identityHeaders: {userId: x-user-roles, tenant: x-a, tier: x-a}\n",
			want: []string{
				`6:29 error auth.identityHeaders.userId: identity header "x-user-roles" is also the default roles header`,
				`6:62 error auth.identityHeaders.tier: identity header "x-a" is also the tenant header`,
			},
		},
		{
			name: "an explicit header may not take another's default",
			src:  "  identityHeaders: {tier: x-user-id}\n",
			want: []string{`6:27 error auth.identityHeaders.tier: identity header "x-user-id" is also the default userId header`},
		},
	})
}

func TestValidateGatewayAuth(t *testing.T) {
	src := "version: 1\ngateways:\n" +
		"  - {name: a, listeners: [{name: http, port: 80}], auth: {statusOnError: 500, timeout: 5ms}}\n" +
		"  - {name: b, listeners: [{name: http, port: 81}], auth: {statusOnError: 503, timeout: 6s}}\n" +
		"  - {name: c, listeners: [{name: http, port: 82}], auth: {timeout: fast}}\n" +
		"  - {name: d, listeners: [{name: http, port: 83}], auth: {statusOnError: 403, timeout: 5s}}\n" +
		"  - {name: e, listeners: [{name: http, port: 84}], auth: {}}\n"
	want := []string{
		`3:74 error gateways[0].auth.statusOnError: statusOnError must be 403 or 503, got 500`,
		`3:88 error gateways[0].auth.timeout: timeout must be between 10ms and 5s, got 5ms`,
		`4:88 error gateways[1].auth.timeout: timeout must be between 10ms and 5s, got 6s`,
		`5:68 error gateways[2].auth.timeout: invalid duration "fast"`,
	}
	if got := render(buildString(src)); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

// routeAuthBase configures API keys and a JWT provider; cases append
// routes from line 8.
const routeAuthBase = base + "auth:\n  apiKeys: {}\n  jwt: [{name: corp, issuer: https://idp/, jwksUri: https://idp/k}]\nroutes:\n"

func TestValidateRouteAuth(t *testing.T) {
	runCases(t, routeAuthBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a method must be configured",
			src:  "  - {name: r, backend: be, auth: {methods: [oauth2, jwt]}}\n",
			want: []string{`8:45 error routes[0].auth.methods[0]: auth method "oauth2" is not configured: the policy has no auth.oauth2`},
		},
		{
			name: "methods is not empty",
			src:  "  - {name: r, backend: be, auth: {methods: []}}\n",
			want: []string{`8:44 error routes[0].auth.methods: auth.methods is empty`},
		},
		{
			name: "unknown methods suggest the closest",
			src:  "  - {name: r, backend: be, auth: {methods: [jwtt, JWT, apikey, basic]}}\n",
			want: []string{
				`8:45 error routes[0].auth.methods[0]: unknown auth method "jwtt"; did you mean "jwt"?`,
				`8:51 error routes[0].auth.methods[1]: unknown auth method "JWT"; did you mean "jwt"?`,
				`8:56 error routes[0].auth.methods[2]: unknown auth method "apikey"; did you mean "apiKey"?`,
				`8:64 error routes[0].auth.methods[3]: unknown auth method "basic"`,
			},
		},
		{
			name: "duplicate methods",
			src:  "  - {name: r, backend: be, auth: {methods: [jwt, apiKey, jwt]}}\n",
			want: []string{`8:58 error routes[0].auth.methods[2]: duplicate auth method "jwt"; first listed at routes[0].auth.methods[0] (p.yaml:8:45)`},
		},
		{
			name: "roles",
			src:  "  - {name: r, backend: be, auth: {roles: []}}\n  - {name: s, backend: be, auth: {roles: [a, b, a]}, match: {path: /s}}\n",
			want: []string{
				`8:42 error routes[0].auth.roles: auth.roles is empty`,
				`9:49 error routes[1].auth.roles[2]: duplicate role "a"; first listed at routes[1].auth.roles[0] (p.yaml:9:43)`,
			},
		},
		{
			name: "scopes",
			src: "  - {name: r, backend: be, auth: {scopes: []}}\n" +
				"  - {name: s, backend: be, auth: {scopes: [\"orders read\", orders:read, orders:read, \"a\\\"b\"]}, match: {path: /s}}\n",
			want: []string{
				`8:43 error routes[0].auth.scopes: auth.scopes is empty`,
				`9:44 error routes[1].auth.scopes[0]: invalid scope "orders read"`,
				`9:72 error routes[1].auth.scopes[2]: duplicate scope "orders:read"; first listed at routes[1].auth.scopes[1] (p.yaml:9:59)`,
				`9:85 error routes[1].auth.scopes[3]: invalid scope "a\"b"`,
			},
		},
		{
			name: "a full route auth",
			src: "  - {name: r, backend: be, auth: {methods: [jwt], roles: [admin], scopes: [orders:read], forwardCredentials: true}}\n" +
				"  - {name: s, backend: be, auth: {}, match: {path: /s}}\n  - {name: t, backend: be, match: {path: /t}}\n",
			want: []string{},
		},
	})
}

func TestValidateNoAuthMethod(t *testing.T) {
	src := base + "routes:\n" +
		"  - {name: users, backend: be}\n" +
		"  - {name: health, backend: be, auth: none, match: {path: /h}}\n" +
		"  - {name: reports, backend: be, auth: {roles: [x]}, match: {path: /r}}\n" +
		"  - {name: orders, backend: be, auth: {methods: [oauth2]}, match: {path: /o}}\n"
	want := []string{
		`5:6 error routes[0]: route "users" needs authentication but the policy configures no auth method`,
		`7:41 error routes[2].auth: route "reports" needs authentication but the policy configures no auth method`,
		`8:50 error routes[3].auth.methods[0]: auth method "oauth2" is not configured: the policy has no auth.oauth2`,
	}
	tests := []struct {
		name string
		auth string // appended after the routes
	}{
		{name: "no auth section", auth: ""},
		{name: "an empty auth section configures nothing", auth: "auth: {}\n"},
		{name: "empty provider lists configure nothing", auth: "auth: {jwt: [], oauth2: []}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(buildString(src + tt.auth)); !slices.Equal(got, want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestValidateNoAuthMethodSaysHowToFix(t *testing.T) {
	ds := buildString(base + "routes:\n  - name: users\n    backend: be\n")
	want := `p.yaml:5:5: error: routes[0]: route "users" needs authentication but the policy configures no auth method; ` +
		`fix: add auth.jwt, auth.apiKeys or auth.oauth2, or mark the route "auth: none"`
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("got %q\nwant %q", ds, want)
	}
}

func TestValidateAuthChecksNeedAReadableAuthSection(t *testing.T) {
	routes := "routes:\n  - {name: r, backend: be}\n  - {name: s, backend: be, auth: {methods: [jwt]}, match: {path: /s}}\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "jwt list is broken",
			src:  base + "auth: {jwt: corp}\n" + routes,
			want: []string{`4:13 error auth.jwt: expected a list, got string "corp"`},
		},
		{
			name: "auth section is broken",
			src:  base + "auth: [jwt]\n" + routes,
			want: []string{`4:7 error auth: expected a mapping, got a list`},
		},
		{
			name: "auth section is misspelled",
			src:  base + "aut: {apiKeys: {}}\n" + routes,
			want: []string{`4:1 error aut: unknown field "aut"; did you mean "auth"?`},
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

func TestValidateProgrammaticAuth(t *testing.T) {
	p := &Policy{
		Version:  1,
		Gateways: []Gateway{{Name: "gw", Listeners: []Listener{{Name: "http", Port: 8080}}}},
		Routes:   []Route{{Name: "r", Backend: "be"}},
		Backends: []Backend{{Name: "be", Endpoints: []string{"10.0.0.1:80"}}},
		Auth:     &Auth{JWT: []JWTProvider{{Name: "corp"}}, OAuth2: []OAuth2Provider{{Name: "p"}}},
	}
	want := []string{
		`0:0 error auth.jwt[0].issuer: jwt provider "corp" has no issuer`,
		`0:0 error auth.jwt[0]: jwt provider "corp" has no keys: set jwksUri or jwks`,
		`0:0 error auth.oauth2[0].introspectionUrl: oauth2 provider "p" has no introspectionUrl`,
		`0:0 error auth.oauth2[0].clientId: oauth2 provider "p" has no clientId`,
		`0:0 error auth.oauth2[0].clientSecretEnv: oauth2 provider "p" has no clientSecretEnv`,
	}
	if got := render(p.Validate()); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
	p.Auth = nil
	want = []string{
		`0:0 error routes[0]: route "r" needs authentication but the policy configures no auth method`,
	}
	if got := render(p.Validate()); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestValidateAuthFixes(t *testing.T) {
	tests := []struct {
		name string
		auth string
		want string
	}{
		{
			name: "environment variable name example",
			auth: "  oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: partner.secret}]\n",
			want: `use upper-case letters, digits and '_', not starting with a digit: the policy names the variable, ` +
				`the secret itself stays in the environment, e.g. "PARTNER_SECRET"`,
		},
		{
			name: "none",
			auth: jwt("jwksUri: https://idp/k, algorithms: [None]"),
			want: "remove it: only signed tokens are accepted",
		},
		{
			name: "lower-case identity header",
			auth: "  identityHeaders: {roles: X-Roles}\n",
			want: `write "x-roles"`,
		},
		{
			name: "durations in range",
			auth: "  oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: S, cacheTtl: 1h}]\n",
			want: "use a duration from 0s to 10m",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := buildString(authBase + tt.auth)
			if len(ds) != 1 || ds[0].Detail != tt.want {
				t.Errorf("diagnostics %q, want one with the fix %q", ds, tt.want)
			}
		})
	}
}

// TestValidateReservesSignedKeyIssuer: no jwt provider may claim the
// issuer or the jwt_authn provider name of Tollgate's signed API keys
// (ir.SignedKeyIssuer, provider tollgate_keys): a provider with that
// issuer would accept tokens as keys or keys as tokens.
func TestValidateReservesSignedKeyIssuer(t *testing.T) {
	for _, tt := range []struct {
		name, src, path, summary, fix string
	}{
		{
			name: "issuer", src: "  jwt: [{name: corp, issuer: 'tollgate:keys', jwksUri: https://idp/k}]\n",
			path: "auth.jwt[0].issuer", summary: `issuer "tollgate:keys" is reserved for Tollgate's signed API keys`,
			fix: "use the issuer of your identity provider (its tokens' \"iss\" claim); signed API keys need no jwt provider: " +
				"they are verified with auth.apiKeys",
		},
		{
			name: "provider name", src: "  jwt: [{name: tollgate_keys, issuer: https://idp/, jwksUri: https://idp/k}]\n",
			path: "auth.jwt[0].name", summary: `invalid jwt provider name "tollgate_keys"`,
			fix: nameRule + `, e.g. "tollgate-keys"`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ds := buildString(authBase + tt.src)
			i := slices.IndexFunc(ds, func(d Diagnostic) bool { return d.Path == tt.path })
			if i < 0 || !ds.HasErrors() {
				t.Fatalf("no error at %s: %q", tt.path, render(ds))
			}
			if d := ds[i]; d.Severity != SeverityError || d.Summary != tt.summary || d.Detail != tt.fix {
				t.Errorf("got %s %q fix %q,\nwant error %q fix %q", d.Severity, d.Summary, d.Detail, tt.summary, tt.fix)
			}
		})
	}
}
