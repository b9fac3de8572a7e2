package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// RequestMirrorPolicy copies percent (1–100) of the requests to cluster;
// Envoy does not wait for the copies and ignores their answers. The copy's
// Host header gets the suffix "-shadow".
func RequestMirrorPolicy(cluster string, percent uint32) *routev3.RouteAction_RequestMirrorPolicy {
	return &routev3.RouteAction_RequestMirrorPolicy{
		Cluster: cluster,
		RuntimeFraction: &corev3.RuntimeFractionalPercent{
			DefaultValue: &typev3.FractionalPercent{Numerator: percent, Denominator: typev3.FractionalPercent_HUNDRED},
		},
	}
}
