package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/xds/translator"
)

// TestPrintAuthPaths: one line per protected route, naming where it is
// decided and, for ext_authz, why.
func TestPrintAuthPaths(t *testing.T) {
	var b strings.Builder
	printAuthPaths(&b, map[string][]translator.RouteAuthPath{"public": {
		{Route: "users", Path: translator.AuthPathEnvoy},
		{Route: "keys", Path: translator.AuthPathEnvoyKey},
		{Route: "mixed", Path: translator.AuthPathEnvoyMixed},
		{Route: "partners", Path: translator.AuthPathExtAuthz, Reason: "accepts oauth2"},
		{Route: "health", Path: translator.AuthPathNone},
	}})
	want := `  gateway public route users: auth in Envoy (jwt_authn, rbac)
  gateway public route keys: signed API keys in Envoy (jwt_authn, key table, rbac); opaque keys via ext_authz
  gateway public route mixed: JWTs and signed API keys in Envoy (jwt_authn, key table, rbac); opaque keys via ext_authz
  gateway public route partners: auth via ext_authz: accepts oauth2
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestValidateSaysRateLimitMode: validate names where a policy's limits are
// taken and why, from the mode the policy compiled to.
func TestValidateSaysRateLimitMode(t *testing.T) {
	const head = "version: 1\ngateways: [{name: gw, listeners: [{name: http, port: 8080}]}]\n" +
		"backends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\nauth: {apiKeys: {}}\n" +
		"rateLimits: {tiers: {free: [{requests: 100, per: minute}]}, defaultTier: free"
	tests := []struct{ name, src, want string }{
		{"left out", head + "}\nroutes: [{name: r, backend: be}]\n",
			"  rate limits: quota: Envoy enforces server-assigned shares of the Redis account, no call per request\n"},
		{"said", head + ", mode: exact}\nroutes: [{name: r, backend: be}]\n",
			"  rate limits: exact: every request counted in Redis through the rate-limit service (rateLimits.mode: exact)\n"},
		{"needed", head + "}\nroutes: [{name: r, backend: be, rateLimit: {shadow: true}}]\n",
			"  rate limits: exact: every request counted in Redis through the rate-limit service " +
				"(route r uses shadow limits or limits keyed by a header, which need it)\n"},
		{"nothing limited", head + "}\nroutes: [{name: r, backend: be, rateLimit: none}]\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			res, _, err := validatePath(path)
			if err != nil || !res.Valid {
				t.Fatalf("validatePath: %v, %+v", err, res)
			}
			var b strings.Builder
			printValidate(&b, res)
			if got := rateLimitLine(b.String()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// rateLimitLine returns the "rate limits" line of validate's output, with
// its newline, or "".
func rateLimitLine(out string) string {
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "  rate limits: ") {
			return l
		}
	}
	return ""
}
