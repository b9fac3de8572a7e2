package translator

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// loadAssignment returns the ClusterLoadAssignment named serviceName (the
// EDS service name of the backend's cluster) with the backend's endpoints
// in IR order.
func loadAssignment(serviceName string, in []ir.Endpoint) *endpointv3.ClusterLoadAssignment {
	lbEndpoints := make([]*endpointv3.LbEndpoint, 0, len(in))
	for _, e := range in {
		lbEndpoints = append(lbEndpoints, envoy.LbEndpoint(e.Host, e.Port))
	}
	return envoy.ClusterLoadAssignment(serviceName, lbEndpoints...)
}
