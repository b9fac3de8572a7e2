package xds

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

type (
	listenerT = listenerv3.Listener
	routeT    = routev3.RouteConfiguration
	clusterT  = clusterv3.Cluster
	endpointT = endpointv3.ClusterLoadAssignment
)
