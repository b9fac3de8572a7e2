package envoy

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// CircuitBreakerLimits are the default-priority thresholds; 0 leaves
// Envoy's default (1024 connections, pending and requests; 3 retries).
type CircuitBreakerLimits struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries uint32
}

// CircuitBreakers returns a cluster's circuit breakers with l as the
// default-priority thresholds.
func CircuitBreakers(l CircuitBreakerLimits) *clusterv3.CircuitBreakers {
	t := &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
	t.MaxConnections = optionalUInt32(l.MaxConnections)
	t.MaxPendingRequests = optionalUInt32(l.MaxPendingRequests)
	t.MaxRequests = optionalUInt32(l.MaxRequests)
	t.MaxRetries = optionalUInt32(l.MaxRetries)
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

// optionalUInt32 is v as a wrapper, or nil when v is 0.
func optionalUInt32(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return nil
	}
	return wrapperspb.UInt32(v)
}
