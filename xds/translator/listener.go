package translator

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// listenersAndRoutes returns, for each IR listener, an Envoy listener whose
// HTTP connection manager (stat prefix = listener name) fetches over RDS the
// route configuration named by bindRouteConfig, and that route
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
		rcName, err := bindRouteConfig(l.Name, hcm)
		if err != nil {
			return nil, nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		filter, err := envoy.HTTPConnectionManagerFilter(hcm)
		if err != nil {
			return nil, nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		listeners = append(listeners, envoy.Listener(l.Name, l.Address, l.Port, filter))
		routes = append(routes, envoy.RouteConfiguration(rcName, slices.Clone(vhosts)...))
	}
	return listeners, routes, nil
}

// bindRouteConfig names the route configuration hcm fetches over RDS
// "<listener>_<8 hex digits>", the digits a hash of hcm's HTTP filters
// (names and configs, router included), sets it on hcm and returns it.
//
// Routes only work with the filters they were built for: a route that
// relies on ext_authz, or on the identity-header strip, is unprotected on a
// connection manager without them. When a push changes a listener's
// filters, Envoy drains the connections of the old filter chain (for up to
// --drain-time-s) while they keep serving requests; were the route
// configuration's name unchanged, those connections would pick up the new
// routes over their RDS subscription and serve, say, a newly protected
// route without ext_authz. With the name following the filters, an old
// connection keeps the route table it was built with (Envoy ignores the
// removal of a route configuration it still uses) and the new filters come
// with a new table. We chose this over "every filter always present,
// disabled per route": it covers every filter, present and future, and the
// HTTPS redirect chain (router only) alike, needs no ext_authz filter
// pointing at a cluster a public-only gateway does not have, and costs
// nothing per request. A push that changes routes but not filters keeps
// the name (an RDS-only update, no listener drain); the same policy always
// gives the same name.
func bindRouteConfig(listener string, hcm *hcmv3.HttpConnectionManager) (string, error) {
	h := sha256.New()
	for _, f := range hcm.GetHttpFilters() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		if err != nil {
			return "", fmt.Errorf("hash HTTP filter %q: %w", f.GetName(), err)
		}
		// Length-prefixed, so that no two filter lists hash the same input.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	name := listener + routeConfigSeparator + hex.EncodeToString(h.Sum(nil)[:4])
	hcm.GetRds().RouteConfigName = name
	return name, nil
}

// routeConfigSeparator separates a route configuration's listener name
// from its filter hash. Policy names cannot contain it, and Envoy's stats
// tag extraction accepts it (a route configuration's name is a tag value,
// [\w-]+: with "~" the name would end up in the Prometheus metric names).
const routeConfigSeparator = "_"
