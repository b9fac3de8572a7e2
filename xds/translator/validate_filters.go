package translator

import (
	"fmt"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// checkHTTPFilters checks the HTTP filters of the listeners' connection
// managers against the clusters and route configurations: each ext_authz
// filter's gRPC cluster exists, and each per-filter config key of a route
// table names a filter of every connection manager that uses the table.
func checkHTTPFilters(r *Resources) []error {
	clusters := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	var errs []error
	filtersOf := map[string][]map[string]bool{} // route config -> filter names of each HCM using it
	for _, l := range r.Listeners {
		hcms, _ := connectionManagers(l) // decoding errors are reported by checkRDSReferences
		for _, hcm := range hcms {
			names, err := httpFilterNames(hcm, clusters)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener %q: %w", l.GetName(), err))
			}
			if rds := hcm.GetRds(); rds != nil {
				filtersOf[rds.GetRouteConfigName()] = append(filtersOf[rds.GetRouteConfigName()], names)
			}
		}
	}
	for _, rc := range r.Routes {
		for _, filters := range filtersOf[rc.GetName()] {
			errs = append(errs, checkPerFilterKeys(rc, filters)...)
		}
	}
	return errs
}

// httpFilterNames returns the names of hcm's HTTP filters and checks that
// the gRPC cluster of each ext_authz filter is in clusters.
func httpFilterNames(hcm *hcmv3.HttpConnectionManager, clusters map[string]bool) (map[string]bool, error) {
	names := make(map[string]bool, len(hcm.GetHttpFilters()))
	for _, f := range hcm.GetHttpFilters() {
		names[f.GetName()] = true
		a := f.GetTypedConfig()
		if !a.MessageIs((*extauthzv3.ExtAuthz)(nil)) {
			continue
		}
		ea := &extauthzv3.ExtAuthz{}
		if err := anypb.UnmarshalTo(a, ea, proto.UnmarshalOptions{}); err != nil {
			return names, fmt.Errorf("http filter %q: %w", f.GetName(), err)
		}
		if c := ea.GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != "" && !clusters[c] {
			return names, fmt.Errorf("http filter %q: gRPC cluster %q not found", f.GetName(), c)
		}
	}
	return names, nil
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
