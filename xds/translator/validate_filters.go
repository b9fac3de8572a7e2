package translator

import (
	"fmt"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// checkHTTPFilters checks the HTTP filters of the listeners' connection
// managers against the clusters and route configurations: the gRPC cluster
// of each ext_authz and ratelimit filter exists, each per-filter config key
// of a route table names a filter of every connection manager that uses the
// table, and a route table with rate_limits is only used by connection
// managers that run a ratelimit filter.
func checkHTTPFilters(r *Resources) []error {
	clusters := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	var errs []error
	filtersOf := map[string][]map[string]bool{} // route config -> filter names of each HCM using it
	rateLimited := map[string][]bool{}          // route config -> whether each HCM using it has a ratelimit filter
	for _, l := range r.Listeners {
		hcms, _ := connectionManagers(l) // decoding errors are reported by checkRDSReferences
		for _, hcm := range hcms {
			names, err := httpFilterNames(hcm, clusters)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener %q: %w", l.GetName(), err))
			}
			if rds := hcm.GetRds(); rds != nil {
				n := rds.GetRouteConfigName()
				filtersOf[n] = append(filtersOf[n], names)
				rateLimited[n] = append(rateLimited[n], hasRateLimitFilter(hcm))
			}
		}
	}
	for _, rc := range r.Routes {
		for _, filters := range filtersOf[rc.GetName()] {
			errs = append(errs, checkPerFilterKeys(rc, filters)...)
		}
		errs = append(errs, checkRateLimitsFiltered(rc, rateLimited[rc.GetName()])...)
	}
	return errs
}

// httpFilterNames returns the names of hcm's HTTP filters and checks that
// the gRPC cluster of each ext_authz and ratelimit filter is in clusters.
func httpFilterNames(hcm *hcmv3.HttpConnectionManager, clusters map[string]bool) (map[string]bool, error) {
	names := make(map[string]bool, len(hcm.GetHttpFilters()))
	for _, f := range hcm.GetHttpFilters() {
		names[f.GetName()] = true
		c, err := grpcCluster(f)
		if err != nil {
			return names, fmt.Errorf("http filter %q: %w", f.GetName(), err)
		}
		if c != "" && !clusters[c] {
			return names, fmt.Errorf("http filter %q: gRPC cluster %q not found", f.GetName(), c)
		}
	}
	return names, nil
}

// grpcCluster returns the Envoy gRPC cluster an ext_authz, ratelimit or ext_proc
// filter calls, or "" for other filters (and for a ratelimit filter without
// a service, which admits every request).
func grpcCluster(f *hcmv3.HttpFilter) (string, error) {
	a := f.GetTypedConfig()
	switch {
	case a.MessageIs((*extauthzv3.ExtAuthz)(nil)):
		ea := &extauthzv3.ExtAuthz{}
		if err := anypb.UnmarshalTo(a, ea, proto.UnmarshalOptions{}); err != nil {
			return "", err
		}
		return ea.GetGrpcService().GetEnvoyGrpc().GetClusterName(), nil
	case a.MessageIs((*ratelimitv3.RateLimit)(nil)):
		rl := &ratelimitv3.RateLimit{}
		if err := anypb.UnmarshalTo(a, rl, proto.UnmarshalOptions{}); err != nil {
			return "", err
		}
		return rl.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName(), nil
	case a.MessageIs((*extprocv3.ExternalProcessor)(nil)):
		ep := &extprocv3.ExternalProcessor{}
		if err := anypb.UnmarshalTo(a, ep, proto.UnmarshalOptions{}); err != nil {
			return "", err
		}
		return ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(), nil
	}
	return "", nil
}

// hasRateLimitFilter reports whether hcm runs a global rate-limit filter.
func hasRateLimitFilter(hcm *hcmv3.HttpConnectionManager) bool {
	for _, f := range hcm.GetHttpFilters() {
		if f.GetTypedConfig().MessageIs((*ratelimitv3.RateLimit)(nil)) {
			return true
		}
	}
	return false
}

// checkRateLimitsFiltered reports the routes of rc that have rate_limits
// when a connection manager using rc (one entry of filtered each) runs no
// ratelimit filter: Envoy accepts them and never limits.
func checkRateLimitsFiltered(rc *routev3.RouteConfiguration, filtered []bool) []error {
	if !slices.Contains(filtered, false) {
		return nil
	}
	var errs []error
	for _, vh := range rc.GetVirtualHosts() {
		if len(vh.GetRateLimits()) > 0 {
			errs = append(errs, fmt.Errorf("route configuration %q: virtual host %q: rate_limits without a ratelimit HTTP filter",
				rc.GetName(), vh.GetName()))
		}
		for _, rt := range vh.GetRoutes() {
			if len(rt.GetRoute().GetRateLimits()) > 0 {
				errs = append(errs, fmt.Errorf("route configuration %q: virtual host %q: route %q: rate_limits without a ratelimit HTTP filter",
					rc.GetName(), vh.GetName(), rt.GetName()))
			}
		}
	}
	return errs
}

// checkPerFilterKeys reports per-filter config keys of rc's virtual hosts
// and routes that name no filter in filters.
func checkPerFilterKeys(rc *routev3.RouteConfiguration, filters map[string]bool) []error {
	var errs []error
	unknown := func(vh *routev3.VirtualHost, rt *routev3.Route, configs map[string]*anypb.Any) {
		var bad []string
		for key := range configs {
			if !filters[key] {
				bad = append(bad, key)
			}
		}
		slices.Sort(bad)
		for _, key := range bad {
			where := fmt.Sprintf("virtual host %q", vh.GetName())
			if rt != nil {
				where += fmt.Sprintf(": route %q", rt.GetName())
			}
			errs = append(errs, fmt.Errorf("route configuration %q: %s: per-filter config %q names no HTTP filter of its connection manager",
				rc.GetName(), where, key))
		}
	}
	for _, vh := range rc.GetVirtualHosts() {
		unknown(vh, nil, vh.GetTypedPerFilterConfig())
		for _, rt := range vh.GetRoutes() {
			unknown(vh, rt, rt.GetTypedPerFilterConfig())
		}
	}
	return errs
}
