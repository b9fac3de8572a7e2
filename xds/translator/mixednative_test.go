package translator

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

func TestAuthPathsMixed(t *testing.T) {
	tc := loadCase(t, "apikey-mixed")
	gw, _ := tc.Config.Gateway(tc.Gateway)
	tests := []struct {
		route, path string
		signed      bool
		reason      string
	}{
		{route: "orders", path: AuthPathEnvoyMixed, signed: true, reason: mixedPathNote},
		{route: "reports", path: AuthPathEnvoyMixed, signed: true, reason: mixedPathNote},
		{route: "search", path: AuthPathEnvoyKey, signed: true, reason: keyPathNote},
		{route: "users", path: AuthPathEnvoy, signed: true},
		{route: "orders", path: AuthPathExtAuthz, reason: "accepts apiKey, jwt: the control plane has no API-key signer"},
	}
	for _, tt := range tests {
		var got RouteAuthPath
		for _, p := range authPaths(&tc.Config, &gw, tt.signed) {
			if p.Route == tt.route {
				got = p
			}
		}
		if got.Path != tt.path || got.Reason != tt.reason {
			t.Errorf("%s (signed %t): %+v, want %s %q", tt.route, tt.signed, got, tt.path, tt.reason)
		}
	}
}

func TestNativeMixedReason(t *testing.T) {
	tc := loadCase(t, "apikey-mixed")
	cfg := tc.Config
	r := ir.Route{Name: "r", Auth: ir.RouteAuth{Methods: []string{ir.MethodJWT, ir.MethodAPIKey}}}
	hmac := cfg
	hmac.Auth.JWT = []ir.JWTProvider{{Name: "h", Issuer: "i", HMACSecretEnv: "S", JWKS: "{}", ClockSkew: 30e9}}
	lua := r
	lua.EditHTTP().Lua = "function envoy_on_request(h) end"
	oauth := r
	oauth.Auth.Methods = []string{ir.MethodJWT, ir.MethodAPIKey, ir.MethodOAuth2}
	tests := []struct {
		name string
		cfg  ir.Config
		r    ir.Route
		want string
	}{
		{"native", cfg, r, ""},
		{"hmac provider", hmac, r, "accepts jwt, apiKey: jwt provider h uses HMAC"},
		{"lua", cfg, lua, "accepts jwt, apiKey: runs a Lua script"},
		{"oauth2 too", cfg, oauth, "accepts jwt, apiKey, oauth2 (only routes"},
	}
	for _, tt := range tests {
		got := nativeMixedReason(&tt.cfg, tt.r, true)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want prefix %q", tt.name, got, tt.want)
		}
	}
}

// TestMixedPoliciesFailClosed: on a native mixed route every deny rule of
// a credential applies to that credential only (a request with neither
// goes on to ext_authz), and the ambiguity rule to every request an
// identity script accepted, whose Check the ext_authz filter skips.
func TestMixedPoliciesFailClosed(t *testing.T) {
	n := &nativeJWT{keyHeader: "x-api-key", cfg: &ir.Config{Auth: ir.Auth{JWT: []ir.JWTProvider{{Name: "corp", Claims: ir.ClaimMap{Roles: "roles"}}}}},
		names: []string{"corp"}}
	ps := n.mixedPolicies(ir.RouteAuth{Methods: []string{ir.MethodAPIKey, ir.MethodJWT}, Roles: []string{"admin"}, Scopes: []string{"s"}})
	for _, name := range []string{policyAmbiguous, policyKeyAmbiguous, policyKeyUnchecked, policyKeyMalformed, policyRole, policyScope} {
		if ps[name] == nil {
			t.Fatalf("no %s policy", name)
		}
	}
	if first := ps[policyAmbiguous].GetAndIds().GetIds()[0]; !proto.Equal(first, nativeMarker("")) {
		t.Errorf("ambiguity rule does not start with the native marker: %v", ps[policyAmbiguous])
	}
	for _, name := range []string{policyRole, policyScope} {
		ids := ps[name].GetOrIds().GetIds()
		if len(ids) != 2 || !proto.Equal(ids[0].GetAndIds().GetIds()[0], nativeMarker(ir.MethodJWT)) ||
			!(proto.Equal(ids[1], keyVerified()) || proto.Equal(ids[1].GetAndIds().GetIds()[0], keyVerified())) {
			t.Errorf("%s is not (JWT accepted ∧ …) ∨ (key verified ∧ …): %v", name, ps[name])
		}
	}
	if m := nativeMarkerMatcher(); m.GetFilter() != envoy.ExtAuthzName {
		t.Errorf("marker matcher %v", m)
	}
}

// TestMixedLocalRepliesFirst: the mixed route's mappers come before every
// other (the first match wins) and carry the two-scheme challenge.
func TestMixedLocalRepliesFirst(t *testing.T) {
	lr, err := jwtLocalReplies(true, true, "x-api-key")
	if err != nil {
		t.Fatal(err)
	}
	mixed := len(mixedLocalReplies())
	for i, m := range lr.GetMappers() {
		j, _ := envoy.JSON(m)
		onMixed := strings.Contains(string(j), "xds.route_metadata.filter_metadata")
		if onMixed != (i < mixed) {
			t.Fatalf("mapper %d on mixed routes %t, want %t: %s", i, onMixed, i < mixed, j)
		}
		if onMixed && m.GetStatusCode().GetValue() == 401 && !strings.Contains(string(j), `Bearer realm=\"tollgate\"`) {
			t.Errorf("mixed 401 mapper %d without the two-scheme challenge: %s", i, j)
		}
	}
}
