package translator

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// loadAssignment returns the ClusterLoadAssignment named serviceName (the
// EDS service name of the backend's cluster) with the backend's endpoints
// in IR order, weighted and grouped by zone (traffic.go).
func loadAssignment(serviceName string, in []ir.Endpoint) *endpointv3.ClusterLoadAssignment {
	return zonedAssignment(serviceName, in)
}
