package envoy

import (
	"net/netip"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// ClusterLoadAssignment returns the endpoints of the cluster (or EDS service
// name) clusterName, all in one locality. With no endpoints the assignment
// is empty, which Envoy accepts: the cluster then has no healthy hosts.
func ClusterLoadAssignment(clusterName string, endpoints ...*endpointv3.LbEndpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: clusterName}
	if len(endpoints) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: endpoints}}
	}
	return cla
}

// LbEndpoint returns one upstream host, address:port over TCP.
func LbEndpoint(address string, port uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: SocketAddress(address, port)},
		},
	}
}

// isIP reports whether s is an IPv4 or IPv6 address literal.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
