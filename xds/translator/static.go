package translator

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
)

// StaticBootstrap returns a bootstrap for `envoy --mode validate` that
// holds r as static resources: the listeners with their route
// configurations inlined into the HTTP connection managers, the clusters,
// and one STATIC cluster per ClusterLoadAssignment carrying it as its
// load_assignment. Envoy then checks everything it would receive over xDS,
// including each route's cluster and the per-route filter configs (a Lua
// script is compiled when its route table loads).
func StaticBootstrap(r *Resources) (*bootstrapv3.Bootstrap, error) {
	b, err := envoy.Bootstrap(envoy.BootstrapOptions{NodeID: "validate", Gateway: "validate", XDSAddress: "127.0.0.1:18000"})
	if err != nil {
		return nil, err
	}
	routes := make(map[string]*routev3.RouteConfiguration, len(r.Routes))
	for _, rc := range r.Routes {
		routes[rc.GetName()] = rc
	}
	for _, l := range r.Listeners {
		sl, err := inlineRoutes(l, routes)
		if err != nil {
			return nil, err
		}
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, sl)
	}
	for _, c := range r.Clusters {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, proto.CloneOf(c))
	}
	for _, cla := range r.Endpoints {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, &clusterv3.Cluster{
			Name:                 "cla/" + cla.GetClusterName(),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			LoadAssignment:       proto.CloneOf(cla),
		})
	}
	if err := staticSecrets(b, r); err != nil {
		return nil, err
	}
	return b, nil
}

// inlineRoutes returns a copy of l whose HTTP connection managers carry
// their RDS route configuration inline.
func inlineRoutes(l *listenerv3.Listener, routes map[string]*routev3.RouteConfiguration) (*listenerv3.Listener, error) {
	l = proto.CloneOf(l)
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if err := anypb.UnmarshalTo(f.GetTypedConfig(), hcm, proto.UnmarshalOptions{}); err != nil {
				return nil, fmt.Errorf("listener %q: %w", l.GetName(), err)
			}
			rc, ok := routes[hcm.GetRds().GetRouteConfigName()]
			if !ok {
				return nil, fmt.Errorf("listener %q: no route configuration %q", l.GetName(), hcm.GetRds().GetRouteConfigName())
			}
			hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
			a, err := envoy.Any(hcm)
			if err != nil {
				return nil, err
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return l, nil
}
