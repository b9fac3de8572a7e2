package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// EDSCluster returns a cluster whose endpoints arrive over ADS (EDS) as the
// ClusterLoadAssignment named serviceName (the cluster's own name when
// serviceName is empty), balanced with lbPolicy.
//
// connectTimeout 0 leaves Envoy's default (5s); Envoy rejects an explicit 0.
func EDSCluster(name, serviceName string, connectTimeout time.Duration, lbPolicy clusterv3.Cluster_LbPolicy) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig:   ConfigSourceADS(),
			ServiceName: serviceName,
		},
		ConnectTimeout: connectTimeoutOrDefault(connectTimeout),
		LbPolicy:       lbPolicy,
	}
}

// StaticCluster returns a cluster with inline endpoints: STATIC when every
// endpoint address is an IP address, otherwise STRICT_DNS (each host name is
// resolved and all its addresses are used). The load assignment's
// cluster_name is set to name.
//
// connectTimeout 0 leaves Envoy's default (5s).
func StaticCluster(name string, connectTimeout time.Duration, endpoints ...*endpointv3.LbEndpoint) *clusterv3.Cluster {
	discovery := clusterv3.Cluster_STATIC
	for _, e := range endpoints {
		if !isIP(e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()) {
			discovery = clusterv3.Cluster_STRICT_DNS
		}
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       connectTimeoutOrDefault(connectTimeout),
		LoadAssignment:       ClusterLoadAssignment(name, endpoints...),
	}
}

// connectTimeoutOrDefault returns d as a Duration, or nil (Envoy's default)
// when d is not positive.
func connectTimeoutOrDefault(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}
