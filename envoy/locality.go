package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// WeightedLbEndpoint is LbEndpoint with a load-balancing weight; weight 0
// or 1 leaves Envoy's default (1).
func WeightedLbEndpoint(address string, port, weight uint32) *endpointv3.LbEndpoint {
	e := LbEndpoint(address, port)
	if weight > 1 {
		e.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return e
}

// ZoneEndpoints is the endpoints of one zone ("" for none).
type ZoneEndpoints struct {
	Zone      string
	Endpoints []*endpointv3.LbEndpoint
}

// ZonedLoadAssignment returns the ClusterLoadAssignment clusterName with one
// locality per zone, in the given order, all at priority 0.
func ZonedLoadAssignment(clusterName string, zones []ZoneEndpoints) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: clusterName}
	for _, z := range zones {
		lle := &endpointv3.LocalityLbEndpoints{LbEndpoints: z.Endpoints}
		if z.Zone != "" {
			lle.Locality = &corev3.Locality{Zone: z.Zone}
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla
}
