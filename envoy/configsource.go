package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ConfigSourceADS returns a config source that fetches the resource over the
// bootstrap's aggregated discovery stream (ADS) with resource API version V3.
//
// initial_fetch_timeout is left at Envoy's default (15s): a resource that
// does not arrive in time lets Envoy finish initialization without it.
// Use ConfigSourceADSWaitForever where "ready" must mean "configured".
func ConfigSourceADS() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// ConfigSourceADSWaitForever is ConfigSourceADS with initial_fetch_timeout
// 0s: Envoy waits for the resource indefinitely, so its /ready endpoint
// stays 503 until the control plane has delivered configuration.
func ConfigSourceADSWaitForever() *corev3.ConfigSource {
	cs := ConfigSourceADS()
	cs.InitialFetchTimeout = durationpb.New(0)
	return cs
}

// APIConfigSourceADS returns the bootstrap's ADS stream definition: gRPC
// (apiType GRPC for state of the world, DELTA_GRPC for incremental) to the
// static cluster named cluster, transport API version V3, sending the node
// only on the first message of a stream.
func APIConfigSourceADS(apiType corev3.ApiConfigSource_ApiType, cluster string) *corev3.ApiConfigSource {
	return &corev3.ApiConfigSource{
		ApiType:                   apiType,
		TransportApiVersion:       corev3.ApiVersion_V3,
		SetNodeOnFirstMessageOnly: true,
		GrpcServices: []*corev3.GrpcService{{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster},
			},
		}},
	}
}
