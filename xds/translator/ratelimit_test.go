package translator

import (
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// translateRateLimit translates the ratelimit case after mutate.
func translateRateLimit(t *testing.T, mutate func(tc *testCase)) *Resources {
	t.Helper()
	tc := loadCase(t, "ratelimit")
	if mutate != nil {
		mutate(&tc)
	}
	return translateTestCase(t, tc)
}

// translateRLS translates the ratelimit case with every route public, so
// that every rate-limited route keeps Envoy's ratelimit filter (routes on
// ext_authz take their limits in the Check: ratelimit_check_test.go),
// after mutate.
func translateRLS(t *testing.T, mutate func(tc *testCase)) *Resources {
	t.Helper()
	return translateRateLimit(t, func(tc *testCase) {
		allPublic(tc)
		if mutate != nil {
			mutate(tc)
		}
	})
}

// allPublic makes every route of the case public.
func allPublic(tc *testCase) {
	routes := tc.Config.Gateways[0].VirtualHosts[0].Routes
	for i := range routes {
		routes[i].Auth = ir.RouteAuth{Public: true}
	}
}

func translateTestCase(t *testing.T, tc testCase) *Resources {
	t.Helper()
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	if err := Validate(r); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

// rateLimitFilter returns the decoded ratelimit filter of the first
// listener, or nil.
func rateLimitFilter(t *testing.T, r *Resources) *ratelimitv3.RateLimit {
	t.Helper()
	for _, f := range decodeHCM(t, r.Listeners[0]).GetHttpFilters() {
		if f.GetName() == envoy.RateLimitName {
			return unpack(t, f, &ratelimitv3.RateLimit{})
		}
	}
	return nil
}

// describe renders a route's rate-limit actions as "kind:key[:detail]".
func describe(rt *routev3.Route) [][]string {
	var out [][]string
	for _, rl := range rt.GetRoute().GetRateLimits() {
		var entries []string
		for _, a := range rl.GetActions() {
			switch {
			case a.GetGenericKey() != nil:
				entries = append(entries, "generic:"+a.GetGenericKey().GetDescriptorKey()+"="+a.GetGenericKey().GetDescriptorValue())
			case a.GetMetadata() != nil:
				m := a.GetMetadata()
				var path []string
				for _, p := range m.GetMetadataKey().GetPath() {
					path = append(path, p.GetKey())
				}
				if !m.GetSkipIfAbsent() || m.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC {
					entries = append(entries, "BAD metadata settings")
				}
				entries = append(entries, "metadata:"+m.GetDescriptorKey()+"="+m.GetMetadataKey().GetKey()+"/"+strings.Join(path, "/"))
			case a.GetRemoteAddress() != nil:
				entries = append(entries, "remote_address")
			case a.GetRequestHeaders() != nil:
				h := a.GetRequestHeaders()
				if !h.GetSkipIfAbsent() {
					entries = append(entries, "BAD header settings")
				}
				entries = append(entries, "header:"+h.GetDescriptorKey()+"="+h.GetHeaderName())
			default:
				entries = append(entries, "unexpected "+a.String())
			}
		}
		if rl.GetStage() != nil || rl.GetDisableKey() != "" {
			entries = append(entries, "BAD stage or disable_key")
		}
		out = append(out, entries)
	}
	return out
}

func TestRateLimitFilterSettings(t *testing.T) {
	rl := rateLimitFilter(t, translateRateLimit(t, nil))
	if rl == nil {
		t.Fatal("no ratelimit filter")
	}
	if rl.GetDomain() != ir.RateLimitDomain || rl.GetTimeout().AsDuration() != 100*time.Millisecond ||
		rl.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName() != RateLimitClusterName ||
		rl.GetRateLimitService().GetTransportApiVersion().String() != "V3" ||
		!rl.GetFailureModeDeny() || rl.GetStatusOnError().GetCode() != 503 ||
		rl.GetEnableXRatelimitHeaders() != ratelimitv3.RateLimit_OFF || rl.GetRateLimitedAsResourceExhausted() ||
		rl.GetStage() != 0 || rl.GetRequestType() != "both" || len(rl.GetRateLimits()) != 0 {
		t.Errorf("ratelimit settings = %v", rl)
	}
	for _, mode := range []string{ir.FailOpen, ir.FailLocal, ""} {
		rl := rateLimitFilter(t, translateRateLimit(t, func(tc *testCase) { tc.Config.RateLimits.FailureMode = mode }))
		if rl.GetFailureModeDeny() || rl.GetStatusOnError() != nil {
			t.Errorf("failure mode %q: failure_mode_deny %v, status_on_error %v; want fail open", mode, rl.GetFailureModeDeny(), rl.GetStatusOnError())
		}
	}
}

func TestRateLimitRouteActions(t *testing.T) {
	const ns = envoy.ExtAuthzName // native JWT routes publish there too
	want := map[string][][]string{
		"health": nil,
		"orders": {{"generic:route=orders", "metadata:consumer=" + ns + "/consumer", "metadata:tier=" + ns + "/tier", "header:header:x-client-id=x-client-id"}},
		"search": {{"generic:route=search", "metadata:consumer=" + ns + "/consumer", "remote_address"}},
		"web":    {{"generic:route=web", "remote_address"}},
	}
	r := translateRLS(t, nil)
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		w, ok := want[rt.GetName()]
		if !ok {
			t.Errorf("unexpected route %q", rt.GetName())
			continue
		}
		if got := describe(rt); !slices.EqualFunc(got, w, slices.Equal) {
			t.Errorf("route %q rate limits = %q, want %q", rt.GetName(), got, w)
		}
	}
}

func TestRateLimitRouteActionsByKeys(t *testing.T) {
	tests := []struct {
		name string
		rl   ir.RouteRateLimit
		want []string
	}{
		{"tier only", ir.RouteRateLimit{Enabled: true, Consumer: true},
			[]string{"generic:route=orders", "metadata:consumer=envoy.filters.http.ext_authz/consumer", "metadata:tier=envoy.filters.http.ext_authz/tier"}},
		{"extra by consumer, no tier", ir.RouteRateLimit{Enabled: true, Extra: []ir.Limit{{Requests: 1, Per: time.Second}}, By: []string{"consumer"}},
			[]string{"generic:route=orders", "metadata:consumer=envoy.filters.http.ext_authz/consumer"}},
		{"extra without by: the service's default, consumer", ir.RouteRateLimit{Enabled: true, Extra: []ir.Limit{{Requests: 1, Per: time.Second}}},
			[]string{"generic:route=orders", "metadata:consumer=envoy.filters.http.ext_authz/consumer"}},
		{"anonymous and client IP once", ir.RouteRateLimit{Enabled: true, Anonymous: true, Extra: []ir.Limit{{Requests: 1, Per: time.Second}}, By: []string{"clientIP"}},
			[]string{"generic:route=orders", "remote_address"}},
		{"headers in By order", ir.RouteRateLimit{Enabled: true, Extra: []ir.Limit{{Requests: 1, Per: time.Second}}, By: []string{"header:a", "header:b"}},
			[]string{"generic:route=orders", "header:header:a=a", "header:header:b=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := translateRLS(t, func(tc *testCase) { tc.Config.Gateways[0].VirtualHosts[0].Routes[1].RateLimit = tt.rl })
			rt := r.Routes[0].GetVirtualHosts()[0].GetRoutes()[1]
			if got := describe(rt); len(got) != 1 || !slices.Equal(got[0], tt.want) {
				t.Errorf("rate limits = %q, want [%q]", got, tt.want)
			}
		})
	}
}

// TestNoRateLimitWhenNotNeeded checks that a gateway without rate-limited
// routes gets neither the filter, nor route actions, nor the cluster, even
// when the service address is known.
func TestNoRateLimitWhenNotNeeded(t *testing.T) {
	r := translateRateLimit(t, func(tc *testCase) {
		routes := tc.Config.Gateways[0].VirtualHosts[0].Routes
		for i := range routes {
			routes[i].RateLimit.Enabled = false
		}
	})
	if got := filterNames(decodeHCM(t, r.Listeners[0])); slices.Contains(got, envoy.RateLimitName) {
		t.Errorf("filters = %v, want no ratelimit", got)
	}
	for _, c := range r.Clusters {
		if c.GetName() == RateLimitClusterName {
			t.Error("rate-limit cluster present")
		}
	}
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		if len(rt.GetRoute().GetRateLimits()) != 0 {
			t.Errorf("route %q has rate limits", rt.GetName())
		}
	}
}

// TestRateLimitWithoutAuthz checks the filter order of a gateway whose
// routes are all public but rate limited.
func TestRateLimitWithoutAuthz(t *testing.T) {
	r := translateRLS(t, func(tc *testCase) { tc.AuthzAddress = "" })
	want := []string{envoy.HeaderMutationName, envoy.RateLimitName, envoy.RouterName}
	if got := filterNames(decodeHCM(t, r.Listeners[0])); !slices.Equal(got, want) {
		t.Errorf("filters = %v, want %v", got, want)
	}
}

func TestRateLimitCluster(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want clusterv3.Cluster_DiscoveryType
	}{
		{"10.0.0.5:8081", clusterv3.Cluster_STATIC},
		{"[fd00::5]:8081", clusterv3.Cluster_STATIC},
		{"ratelimit.tollgate.svc:8081", clusterv3.Cluster_STRICT_DNS},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			r := translateRateLimit(t, func(tc *testCase) { tc.RateLimitAddress = tt.addr })
			i := slices.IndexFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == RateLimitClusterName })
			if i < 0 {
				t.Fatal("no rate-limit cluster")
			}
			c := r.Clusters[i]
			if c.GetType() != tt.want || c.GetConnectTimeout().AsDuration() != time.Second ||
				c.GetTypedExtensionProtocolOptions()[envoy.HTTPProtocolOptionsName] == nil {
				t.Errorf("rate-limit cluster = %v, want %v, 1s, HTTP/2", c, tt.want)
			}
			for _, cla := range r.Endpoints {
				if cla.GetClusterName() == RateLimitClusterName {
					t.Error("rate-limit cluster has a ClusterLoadAssignment in the snapshot")
				}
			}
		})
	}
}

func TestTranslateRateLimitErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(tc *testCase)
		wantErr string
	}{
		{"no rate-limit address", func(tc *testCase) { tc.RateLimitAddress = "" }, "--ratelimit-addr"},
		{"address without port", func(tc *testCase) { tc.RateLimitAddress = "10.0.0.5" }, `rate-limit service: address "10.0.0.5"`},
		{"address port 0", func(tc *testCase) { tc.RateLimitAddress = "rls:0" }, "port in 1-65535"},
		{"backend named like the rate-limit cluster", func(tc *testCase) {
			tc.Config.Backends = append(tc.Config.Backends, ir.Backend{Name: RateLimitClusterName})
			tc.Config.Gateways[0].VirtualHosts[0].Routes[1].Backend = RateLimitClusterName
		}, "reserved for the rate-limit service cluster"},
		{"unknown by key", func(tc *testCase) {
			tc.Config.Gateways[0].VirtualHosts[0].Routes[1].RateLimit.By = []string{"tenant"}
		}, `route "orders": rate limit: unknown key "tenant"`},
		{"header key without a name", func(tc *testCase) {
			tc.Config.Gateways[0].VirtualHosts[0].Routes[1].RateLimit.By = []string{"header:"}
		}, `unknown key "header:"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "ratelimit")
			allPublic(&tc) // the RLS path
			tt.mutate(&tc)
			_, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Translate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateRateLimit(t *testing.T) {
	t.Run("missing rate-limit cluster", func(t *testing.T) {
		r := translateRateLimit(t, nil)
		r.Clusters = slices.DeleteFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == RateLimitClusterName })
		err := Validate(r)
		if err == nil || !strings.Contains(err.Error(), `http filter "envoy.filters.http.ratelimit": gRPC cluster "tollgate_ratelimit" not found`) {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("rate limits without the filter", func(t *testing.T) {
		r := translateRLS(t, nil)
		hcm := decodeHCM(t, r.Listeners[0])
		hcm.HttpFilters = slices.DeleteFunc(hcm.HttpFilters, func(f *hcmv3.HttpFilter) bool { return f.GetName() == envoy.RateLimitName })
		setFilter(t, r.Listeners[0], hcm)
		err := Validate(r)
		if err == nil || !strings.Contains(err.Error(), `virtual host "any": route "orders": rate_limits without a ratelimit HTTP filter`) {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("virtual host rate limits without the filter", func(t *testing.T) {
		r := translateCase(t, "minimal")
		r.Routes[0].VirtualHosts[0].RateLimits = []*routev3.RateLimit{envoy.RouteRateLimit(envoy.RateLimitActionRemoteAddress())}
		err := Validate(r)
		if err == nil || !strings.Contains(err.Error(), `virtual host "any": rate_limits without a ratelimit HTTP filter`) {
			t.Fatalf("Validate = %v", err)
		}
	})
}
