// Package translator turns the policy IR of one gateway into the Envoy
// resources (listeners, route configurations, clusters, endpoints) that the
// gateway's Envoys receive over ADS.
//
// It is where IR names meet Envoy: it decides nothing about Envoy's defaults
// (package envoy does) and nothing about the policy (the IR is final). Its
// output is deterministic: the same IR always yields resources whose
// deterministic protobuf encoding is byte-identical.
package translator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// Resources is one gateway's Envoy configuration, each slice sorted by name
// (ClusterLoadAssignments by cluster_name).
//
// Resources may share sub-messages (every RouteConfiguration of a gateway
// holds the same VirtualHost messages), so neither the slices nor the
// messages may be modified once Translate returns them.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
}

// Translate returns the Envoy resources of the gateway named gateway in cfg:
//   - one Listener and one RouteConfiguration per IR listener, both named
//     after it, each route table holding all of the gateway's virtual hosts;
//   - one EDS Cluster per backend the gateway's routes reference, named
//     after the backend, and its ClusterLoadAssignment, named by the
//     cluster's EDS service name "<backend>~<8 hex digits>": a hash of the
//     cluster's settings, so that a changed cluster asks for a fresh
//     assignment instead of warming until its initial_fetch_timeout.
//
// It fails if the gateway is unknown, a route references an unknown backend,
// or the IR breaks one of its documented invariants. It does not validate
// the result against Envoy's rules: call Validate for that.
func Translate(cfg *ir.Config, gateway string) (*Resources, error) {
	if cfg == nil {
		return nil, errors.New("translate: nil config")
	}
	gw, ok := cfg.Gateway(gateway)
	if !ok {
		return nil, fmt.Errorf("translate: unknown gateway %q", gateway)
	}
	vhosts, err := virtualHosts(gw.VirtualHosts)
	if err != nil {
		return nil, fmt.Errorf("translate gateway %q: %w", gateway, err)
	}
	listeners, routes, err := listenersAndRoutes(gw.Listeners, vhosts)
	if err != nil {
		return nil, fmt.Errorf("translate gateway %q: %w", gateway, err)
	}
	clusters, endpoints, err := clustersAndEndpoints(cfg.Backends, gw.BackendNames())
	if err != nil {
		return nil, fmt.Errorf("translate gateway %q: %w", gateway, err)
	}
	r := &Resources{Listeners: listeners, Routes: routes, Clusters: clusters, Endpoints: endpoints}
	r.sort()
	return r, nil
}

// ByType returns the resources keyed by xDS type URL, the form
// cache.NewSnapshot takes.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	return map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(r.Listeners),
		resource.RouteType:    asResources(r.Routes),
		resource.ClusterType:  asResources(r.Clusters),
		resource.EndpointType: asResources(r.Endpoints),
	}
}

// sort orders every slice by resource name.
func (r *Resources) sort() {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
}

// asResources converts a slice of typed resources to cache resources.
func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}
