package translator

import (
	"regexp"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// routeExtensions returns the ext_authz context extensions of route rt, or
// nil when the route does not call the service.
func routeExtensions(t *testing.T, rt *routev3.Route) map[string]string {
	t.Helper()
	a, ok := rt.GetTypedPerFilterConfig()[envoy.ExtAuthzName]
	if !ok {
		return nil
	}
	per := &extauthzv3.ExtAuthzPerRoute{}
	if err := a.UnmarshalTo(per); err != nil {
		t.Fatal(err)
	}
	return per.GetCheckSettings().GetContextExtensions()
}

func namedFilter(hcm *hcmv3.HttpConnectionManager, name string) *hcmv3.HttpFilter {
	i := slices.IndexFunc(hcm.GetHttpFilters(), func(f *hcmv3.HttpFilter) bool { return f.GetName() == name })
	if i < 0 {
		return nil
	}
	return hcm.GetHttpFilters()[i]
}

// TestRateLimitsInCheck: the ratelimit case's routes on ext_authz (orders,
// search) take their limits in the Check: marked, without rate_limits; the
// public one (web) keeps its descriptor and the ratelimit filter.
func TestRateLimitsInCheck(t *testing.T) {
	r := translateRateLimit(t, nil)
	want := map[string]struct {
		marked  bool
		actions int
	}{"health": {false, 0}, "orders": {true, 0}, "search": {true, 0}, "web": {false, 1}}
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		w := want[rt.GetName()]
		marked := routeExtensions(t, rt)[contract.KeyRateLimit] == contract.RateLimitExact
		if marked != w.marked || len(rt.GetRoute().GetRateLimits()) != w.actions {
			t.Errorf("route %q: marked %v with %d rate_limits, want %v and %d", rt.GetName(), marked, len(rt.GetRoute().GetRateLimits()), w.marked, w.actions)
		}
	}
	hcm := decodeHCM(t, r.Listeners[0])
	if namedFilter(hcm, envoy.RateLimitName) == nil {
		t.Error("the public rate-limited route lost the ratelimit filter")
	}
	authz := unpack(t, namedFilter(hcm, envoy.ExtAuthzName), &extauthzv3.ExtAuthz{})
	var allowed []string
	for _, p := range authz.GetAllowedHeaders().GetPatterns() {
		allowed = append(allowed, p.GetExact())
	}
	for _, h := range []string{contract.HeaderClientIP, "x-client-id"} { // orders is keyed by x-client-id
		if !slices.Contains(allowed, h) {
			t.Errorf("ext_authz allowed headers %v lack %s", allowed, h)
		}
	}
	if re := authz.GetDecoderHeaderMutationRules().GetAllowExpression().GetRegex(); !regexpMatches(t, re, contract.HeaderClientIP) {
		t.Errorf("ext_authz may not remove %s (allow expression %q)", contract.HeaderClientIP, re)
	}
}

// TestClientIPHeaderIsEnvoys: the edge filter removes a client's copy of
// the client-IP header before setting it from Envoy's trusted address.
func TestClientIPHeaderIsEnvoys(t *testing.T) {
	hcm := decodeHCM(t, translateRateLimit(t, nil).Listeners[0])
	edge := unpack(t, hcm.GetHttpFilters()[0], &headermutationv3.HeaderMutation{})
	ms := edge.GetMutations().GetRequestMutations()
	removed, set := -1, -1
	for i, m := range ms {
		switch {
		case m.GetRemove() == contract.HeaderClientIP:
			removed = i
		case m.GetAppend().GetHeader().GetKey() == contract.HeaderClientIP:
			set = i
			if v := m.GetAppend().GetHeader().GetValue(); v != "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" {
				t.Errorf("client-IP header value %q", v)
			}
		}
	}
	if removed < 0 || set < removed {
		t.Fatalf("edge request mutations %v: want %s removed, then set", ms, contract.HeaderClientIP)
	}
	// Without routes that take their limits in the Check, no such header.
	hcm = decodeHCM(t, translateRLS(t, nil).Listeners[0])
	edge = unpack(t, hcm.GetHttpFilters()[0], &headermutationv3.HeaderMutation{})
	for _, m := range edge.GetMutations().GetRequestMutations() {
		if m.GetAppend() != nil {
			t.Errorf("edge filter sets %v on a gateway that needs no client-IP header", m.GetAppend().GetHeader())
		}
	}
}

// TestNoRateLimitFilterWhenEveryLimitIsInCheck: a gateway whose every
// rate-limited route is on ext_authz has no ratelimit filter, no
// rate-limit cluster, and needs no rate-limit address.
func TestNoRateLimitFilterWhenEveryLimitIsInCheck(t *testing.T) {
	r := translateRateLimit(t, func(tc *testCase) {
		tc.RateLimitAddress = ""
		routes := tc.Config.Gateways[0].VirtualHosts[0].Routes
		for i := range routes {
			if routes[i].Auth.Public {
				routes[i].RateLimit = ir.RouteRateLimit{}
			}
		}
	})
	if got := filterNames(decodeHCM(t, r.Listeners[0])); slices.Contains(got, envoy.RateLimitName) {
		t.Errorf("filters = %v, want no ratelimit", got)
	}
	if slices.ContainsFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == RateLimitClusterName }) {
		t.Error("rate-limit cluster present")
	}
}

func regexpMatches(t *testing.T, re, s string) bool {
	t.Helper()
	ok, err := regexp.MatchString(re, s)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestQuotaModeTakesNoLimitsInCheck: with rateLimits.mode quota, Envoy
// enforces every limit, so no route on ext_authz is marked to take its
// limits in the Check as well (they would be counted twice).
func TestQuotaModeTakesNoLimitsInCheck(t *testing.T) {
	r := translateRateLimit(t, func(tc *testCase) { tc.Config.RateLimits.Mode = ir.RateLimitQuota })
	for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		if routeExtensions(t, rt)[contract.KeyRateLimit] != "" {
			t.Errorf("route %q takes its limits in the Check in quota mode", rt.GetName())
		}
	}
}
