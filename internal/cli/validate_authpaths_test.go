package cli

import (
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
