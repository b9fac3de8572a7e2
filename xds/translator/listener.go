package translator

import (
	"fmt"
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// listenersAndRoutes returns, for each IR listener, an Envoy listener whose
// HTTP connection manager (stat prefix = listener name) fetches over RDS the
// route configuration named after the listener, and that route
// configuration, holding vhosts. httpFilters run before the router; edge
// sets the managers' edge hardening; decorate adds the access log and tracing
// (observability.go).
func listenersAndRoutes(in []ir.Listener, vhosts []*routev3.VirtualHost, httpFilters []*hcmv3.HttpFilter,
	edge ir.Edge, decorate func(*hcmv3.HttpConnectionManager),
) ([]*listenerv3.Listener, []*routev3.RouteConfiguration, error) {
	listeners := make([]*listenerv3.Listener, 0, len(in))
	routes := make([]*routev3.RouteConfiguration, 0, len(in))
	for _, l := range in {
		hcm := envoy.HTTPConnectionManager(l.Name, l.Name, httpFilters...)
		envoy.ApplyEdge(hcm, edgeOptions(edge))
		decorate(hcm)
		filter, err := envoy.HTTPConnectionManagerFilter(hcm)
		if err != nil {
			return nil, nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		listeners = append(listeners, envoy.Listener(l.Name, l.Address, l.Port, filter))
		routes = append(routes, envoy.RouteConfiguration(l.Name, slices.Clone(vhosts)...))
	}
	return listeners, routes, nil
}
