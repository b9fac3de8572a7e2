package translator

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// translateAuth translates the auth case after mutate.
func translateAuth(t *testing.T, mutate func(tc *testCase)) *Resources {
	t.Helper()
	tc := loadCase(t, "auth")
	if mutate != nil {
		mutate(&tc)
	}
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	if err := Validate(r); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

// decodeHCM returns the HTTP connection manager of the listener's only filter.
func decodeHCM(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	t.Helper()
	hcms, err := connectionManagers(l)
	if err != nil || len(hcms) != 1 {
		t.Fatalf("listener %q: %d connection managers, %v", l.GetName(), len(hcms), err)
	}
	return hcms[0]
}

// unpack decodes a filter's typed_config into m.
func unpack[M proto.Message](t *testing.T, f *hcmv3.HttpFilter, m M) M {
	t.Helper()
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatalf("filter %q: %v", f.GetName(), err)
	}
	return m
}

// jwtAuthnECDS stands in filterNames for a jwt_authn served over ECDS,
// whose name holds a hash of its config.
const jwtAuthnECDS = "(jwt_authn over ECDS)"

func filterNames(hcm *hcmv3.HttpConnectionManager) []string {
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		name := f.GetName()
		if strings.HasPrefix(name, JWTAuthnFilterPrefix) && discoveredJWTAuthn(f) {
			name = jwtAuthnECDS
		}
		names = append(names, name)
	}
	return names
}

func TestHTTPFilterOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"minimal", []string{envoy.HeaderMutationName, envoy.RouterName}},
		{"routing", []string{envoy.HeaderMutationName, envoy.RouterName}},
		{"multi-gateway", []string{envoy.HeaderMutationName, envoy.RouterName}},
		{"auth", []string{envoy.HeaderMutationName, jwtAuthnECDS, jwtIdentityFilter, identityMetadataFilter, envoy.RBACName, envoy.ExtAuthzName, envoy.RouterName}},
		{"ratelimit", []string{envoy.HeaderMutationName, envoy.ExtAuthzName, envoy.RateLimitName, envoy.RouterName}},
		{"apikey-native", []string{envoy.HeaderMutationName, envoy.JwtAuthnName, KeyIdentityFilter, identityMetadataFilter, envoy.RBACName, envoy.ExtAuthzName, envoy.RateLimitName, envoy.RouterName}},
		{"apikey-mixed", []string{envoy.HeaderMutationName, jwtAuthnECDS, jwtIdentityFilter, KeyIdentityFilter, identityMetadataFilter, envoy.RBACName, envoy.ExtAuthzName, envoy.RateLimitName, envoy.RouterName}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := translateCase(t, tt.name)
			for _, l := range r.Listeners {
				if got := filterNames(decodeHCM(t, l)); !slices.Equal(got, tt.want) {
					t.Errorf("listener %q filters = %v, want %v", l.GetName(), got, tt.want)
				}
			}
			hasAuthz := slices.ContainsFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == contract.ClusterName })
			if want := slices.Contains(tt.want, envoy.ExtAuthzName); hasAuthz != want {
				t.Errorf("authz cluster present = %v, want %v", hasAuthz, want)
			}
			hasRateLimit := slices.ContainsFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == RateLimitClusterName })
			if want := slices.Contains(tt.want, envoy.RateLimitName); hasRateLimit != want {
				t.Errorf("rate-limit cluster present = %v, want %v", hasRateLimit, want)
			}
		})
	}
}

func TestIdentityHeadersStripped(t *testing.T) {
	strip := func(r *Resources) []string {
		hm := unpack(t, decodeHCM(t, r.Listeners[0]).GetHttpFilters()[0], &headermutationv3.HeaderMutation{})
		var names []string
		for _, m := range hm.GetMutations().GetRequestMutations() {
			names = append(names, m.GetRemove())
		}
		return names
	}
	custom := strip(translateAuth(t, nil))
	// x-envoy-original-path too: only Envoy's router may set it; and
	// x-tollgate-client-ip, which only the edge sets (where a Check takes limits).
	if want := []string{"x-auth-roles", "x-auth-tenant", "x-auth-tier", "x-auth-user", "x-envoy-original-path", "x-tollgate-client-ip"}; !slices.Equal(custom, want) {
		t.Errorf("custom identity headers removed = %v, want %v", custom, want)
	}
	defaults := strip(translateAuth(t, func(tc *testCase) { tc.Config.Auth.IdentityHeaders = ir.IdentityHeaders{} }))
	if want := []string{"x-consumer-tier", "x-envoy-original-path", "x-tenant-id", "x-tollgate-client-ip", "x-user-id", "x-user-roles"}; !slices.Equal(defaults, want) {
		t.Errorf("default identity headers removed = %v, want %v", defaults, want)
	}
}

func TestExtAuthzFilterSettings(t *testing.T) {
	extAuthz := func(mutate func(tc *testCase)) *extauthzv3.ExtAuthz {
		hcm := decodeHCM(t, translateAuth(t, mutate).Listeners[0])
		i := slices.IndexFunc(hcm.GetHttpFilters(), func(f *hcmv3.HttpFilter) bool { return f.GetName() == envoy.ExtAuthzName })
		return unpack(t, hcm.GetHttpFilters()[i], &extauthzv3.ExtAuthz{})
	}
	ea := extAuthz(nil)
	if ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != contract.ClusterName ||
		ea.GetGrpcService().GetTimeout().AsDuration() != 250*time.Millisecond ||
		ea.GetStatusOnError().GetCode() != 503 || ea.GetFailureModeAllow() || !ea.GetValidateMutations() ||
		ea.GetIncludePeerCertificate() || ea.GetClearRouteCache() {
		t.Errorf("ext_authz settings = %v", ea)
	}
	var allowed []string
	for _, p := range ea.GetAllowedHeaders().GetPatterns() {
		allowed = append(allowed, p.GetExact())
	}
	// Credentials only: CORS preflights are Envoy's CORS filter's business.
	if want := []string{"authorization", "x-api-key"}; !slices.Equal(allowed, want) {
		t.Errorf("allowed headers = %v, want %v", allowed, want)
	}
	rules := ea.GetDecoderHeaderMutationRules()
	wantRe := "^(authorization|x-api-key|x-auth-roles|x-auth-tenant|x-auth-tier|x-auth-user)$"
	if !rules.GetDisallowAll().GetValue() || !rules.GetDisallowIsError().GetValue() || rules.GetAllowExpression().GetRegex() != wantRe {
		t.Errorf("mutation rules = %v, want disallow_all, disallow_is_error, allow %s", rules, wantRe)
	}

	ea = extAuthz(func(tc *testCase) {
		tc.Config.Gateways[0].Auth = ir.GatewayAuth{}
		tc.Config.Auth.APIKeys = nil
	})
	if ea.GetGrpcService().GetTimeout().AsDuration() != 200*time.Millisecond || ea.GetStatusOnError().GetCode() != 503 {
		t.Errorf("defaults: timeout %v, status %v; want 200ms, 503", ea.GetGrpcService().GetTimeout(), ea.GetStatusOnError())
	}
	if got := len(ea.GetAllowedHeaders().GetPatterns()); got != 1 {
		t.Errorf("without API keys: %d allowed headers, want 1", got)
	}
}

func TestAuthzCluster(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want clusterv3.Cluster_DiscoveryType
	}{
		{"10.0.0.9:9191", clusterv3.Cluster_STATIC},
		{"[fd00::9]:9191", clusterv3.Cluster_STATIC},
		{"authz.tollgate.svc:9191", clusterv3.Cluster_STRICT_DNS},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			r := translateAuth(t, func(tc *testCase) { tc.AuthzAddress = tt.addr })
			i := slices.IndexFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == contract.ClusterName })
			if i < 0 {
				t.Fatal("no authz cluster")
			}
			c := r.Clusters[i]
			if c.GetType() != tt.want || c.GetConnectTimeout().AsDuration() != time.Second ||
				c.GetTypedExtensionProtocolOptions()[envoy.HTTPProtocolOptionsName] == nil {
				t.Errorf("authz cluster = %v, want %v, 1s, HTTP/2", c, tt.want)
			}
			for _, cla := range r.Endpoints {
				if cla.GetClusterName() == contract.ClusterName {
					t.Error("authz cluster has a ClusterLoadAssignment in the snapshot")
				}
			}
		})
	}
}

func TestAuthzPerRoute(t *testing.T) {
	r := translateAuth(t, nil)
	want := map[string]map[string]string{
		"health":   nil, // disabled
		"web":      nil,
		"admin":    nil, // JWT only: decided in Envoy (jwtauthn_test.go), ext_authz disabled
		"orders":   {"route": "orders", "methods": "apiKey,jwt,oauth2", "roles": "buyer,support"},
		"partners": {"route": "partners", "methods": "apiKey", "forward_credentials": "true"},
	}
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		a := rt.GetTypedPerFilterConfig()[envoy.ExtAuthzName]
		others := len(rt.GetTypedPerFilterConfig()) - 1
		if _, ok := rt.GetTypedPerFilterConfig()[envoy.HeaderMutationName]; ok && want[rt.GetName()] == nil {
			others-- // a public route strips the API-key header (TestPublicRoutesStripAPIKey)
		}
		if a == nil || (others != 0 && rt.GetName() != "admin") {
			t.Fatalf("route %q: per-filter config %v", rt.GetName(), rt.GetTypedPerFilterConfig())
		}
		pr := &extauthzv3.ExtAuthzPerRoute{}
		if err := a.UnmarshalTo(pr); err != nil {
			t.Fatal(err)
		}
		w, ok := want[rt.GetName()]
		switch {
		case !ok:
			t.Errorf("unexpected route %q", rt.GetName())
		case w == nil && !pr.GetDisabled():
			t.Errorf("public route %q: %v, want disabled", rt.GetName(), pr)
		case w != nil && !maps.Equal(pr.GetCheckSettings().GetContextExtensions(), w):
			t.Errorf("route %q context extensions = %v, want %v", rt.GetName(), pr.GetCheckSettings().GetContextExtensions(), w)
		}
	}
}

// TestNoAuthzWhenAllPublic checks that a gateway without protected routes
// gets neither the ext_authz filter, nor per-route configs, nor the cluster,
// even when the service address is known.
func TestNoAuthzWhenAllPublic(t *testing.T) {
	r := translateAuth(t, func(tc *testCase) {
		routes := tc.Config.Gateways[0].VirtualHosts[0].Routes
		for i := range routes {
			routes[i].Auth = ir.RouteAuth{Public: true}
		}
	})
	if got := filterNames(decodeHCM(t, r.Listeners[0])); slices.Contains(got, envoy.ExtAuthzName) {
		t.Errorf("filters = %v, want no ext_authz", got)
	}
	for _, c := range r.Clusters {
		if c.GetName() == contract.ClusterName {
			t.Error("authz cluster present")
		}
	}
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		if _, ok := rt.GetTypedPerFilterConfig()[envoy.ExtAuthzName]; ok {
			t.Errorf("route %q has an ext_authz per-filter config", rt.GetName())
		}
	}
}

func TestTranslateAuthErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(tc *testCase)
		wantErr string
	}{
		{"no authz address", func(tc *testCase) { tc.AuthzAddress = "" }, "--authz-addr"},
		{"authz address without port", func(tc *testCase) { tc.AuthzAddress = "10.0.0.1" }, `ext_authz service: address "10.0.0.1"`},
		{"authz address port 0", func(tc *testCase) { tc.AuthzAddress = "authz:0" }, "port in 1-65535"},
		{"negative timeout", func(tc *testCase) { tc.Config.Gateways[0].Auth.Timeout = -time.Second }, "negative ext_authz timeout"},
		{"status not an error", func(tc *testCase) { tc.Config.Gateways[0].Auth.StatusOnError = 200 }, "status on error 200"},
		{"backend named like the authz cluster", func(tc *testCase) {
			tc.Config.Backends = append(tc.Config.Backends, ir.Backend{Name: contract.ClusterName})
			tc.Config.Gateways[0].VirtualHosts[0].Routes[1].Backend = contract.ClusterName
		}, "reserved for the ext_authz service cluster"},
		{"role with a comma", func(tc *testCase) {
			tc.Config.Gateways[0].VirtualHosts[0].Routes[2].Auth.Roles = []string{"a,b"}
		}, `route "orders": auth: "a,b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "auth")
			tt.mutate(&tc)
			_, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Translate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateHTTPFilterReferences(t *testing.T) {
	t.Run("missing ext_authz cluster", func(t *testing.T) {
		r := translateAuth(t, nil)
		r.Clusters = slices.DeleteFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == contract.ClusterName })
		err := Validate(r)
		if err == nil || !strings.Contains(err.Error(), `http filter "envoy.filters.http.ext_authz": gRPC cluster "tollgate_authz" not found`) {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("per-filter config of an absent filter", func(t *testing.T) {
		r := translateCase(t, "minimal")
		rt := r.Routes[0].GetVirtualHosts()[0].GetRoutes()[0]
		if err := envoy.SetRouteFilterConfig(rt, envoy.ExtAuthzName, envoy.ExtAuthzPerRouteDisabled()); err != nil {
			t.Fatal(err)
		}
		err := Validate(r)
		if err == nil || !strings.Contains(err.Error(), `route "web": per-filter config "envoy.filters.http.ext_authz" names no HTTP filter`) {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("virtual host per-filter config", func(t *testing.T) {
		r := translateAuth(t, nil)
		vh := r.Routes[0].GetVirtualHosts()[0]
		disabled := vh.GetRoutes()[0].GetTypedPerFilterConfig()[envoy.ExtAuthzName]
		vh.TypedPerFilterConfig = map[string]*anypb.Any{envoy.ExtAuthzName: disabled}
		if err := Validate(r); err != nil {
			t.Fatalf("valid key rejected: %v", err)
		}
		vh.TypedPerFilterConfig = map[string]*anypb.Any{"cors": disabled}
		if err := Validate(r); err == nil || !strings.Contains(err.Error(), `virtual host "any": per-filter config "cors"`) {
			t.Fatalf("Validate = %v", err)
		}
	})
}
