package envoy

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// RouteConfiguration returns the route table named name (the name an HTTP
// connection manager's RDS config refers to) with vhosts in the given order.
// Envoy picks the virtual host by the most specific matching domain, not by
// order, and rejects a table in which two virtual hosts share a domain.
func RouteConfiguration(name string, vhosts ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhosts}
}

// VirtualHost returns a virtual host serving the Host values in domains
// (exact names, "*.suffix", "prefix*" or "*"), whose routes are evaluated in
// order: Envoy picks the first that matches.
func VirtualHost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

// Route returns a route named name (the name appears in stats and access
// logs) that forwards requests matching match with action.
func Route(name string, match *routev3.RouteMatch, action *routev3.RouteAction) *routev3.Route {
	return &routev3.Route{
		Name:   name,
		Match:  match,
		Action: &routev3.Route_Route{Route: action},
	}
}
