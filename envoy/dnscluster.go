package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	commondnsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/common/dns/v3"
	dnsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dns/v3"
)

// DNSClusterName is the cluster extension of DNS-resolved clusters.
const DNSClusterName = "envoy.cluster.dns"

// DNSCluster returns a cluster whose endpoints are every address host
// resolves to, on port (strict DNS semantics: all_addresses_in_single_endpoint
// off), re-resolved following the records' TTLs, IPv4 preferred. It uses
// the DNS cluster extension: the cluster-level DNS fields are deprecated
// since Envoy 1.33.
func DNSCluster(name, host string, port uint32, connectTimeout time.Duration, lbPolicy clusterv3.Cluster_LbPolicy) *clusterv3.Cluster {
	ext := &dnsv3.DnsCluster{
		RespectDnsTtl:   true,
		DnsLookupFamily: commondnsv3.DnsLookupFamily_V4_PREFERRED,
	}
	return &clusterv3.Cluster{
		Name: name,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name: DNSClusterName, TypedConfig: MustAny(ext),
		}},
		ConnectTimeout: connectTimeoutOrDefault(connectTimeout),
		LbPolicy:       lbPolicy,
		LoadAssignment: ClusterLoadAssignment(name, LbEndpoint(host, port)),
	}
}
