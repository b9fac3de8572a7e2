package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// serviceNameSeparator joins a backend name and its settings hash in an EDS
// service name.
const serviceNameSeparator = "~"

// clustersAndEndpoints returns the cluster and the ClusterLoadAssignment of
// each backend in names (the backends a gateway references), looked up in
// backends.
func clustersAndEndpoints(backends []ir.Backend, names []string) ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment, error) {
	byName := make(map[string]*ir.Backend, len(backends))
	for i := range backends {
		byName[backends[i].Name] = &backends[i]
	}
	clusters := make([]*clusterv3.Cluster, 0, len(names))
	endpoints := make([]*endpointv3.ClusterLoadAssignment, 0, len(names))
	for _, name := range names {
		b, ok := byName[name]
		if !ok {
			return nil, nil, fmt.Errorf("backend %q: referenced by a route but not defined", name)
		}
		c, err := clusterFor(b)
		if err != nil {
			return nil, nil, fmt.Errorf("backend %q: %w", name, err)
		}
		clusters = append(clusters, c)
		if !b.UsesDNS() {
			endpoints = append(endpoints, loadAssignment(c.GetEdsClusterConfig().GetServiceName(), b.Endpoints))
		}
	}
	return clusters, endpoints, nil
}

// clusterFor returns the EDS cluster of backend b, named after it.
//
// Its EDS service name is "<backend>~<hash>", the hash covering every other
// setting of the cluster. A cluster whose settings change thus asks for a
// ClusterLoadAssignment it has not seen: with delta xDS an unchanged CLA is
// not re-sent, and the updated cluster would otherwise stay warming until
// its initial_fetch_timeout.
func clusterFor(b *ir.Backend) (*clusterv3.Cluster, error) {
	lb, err := lbPolicy(b.LoadBalancing)
	if err != nil {
		return nil, err
	}
	if b.ConnectTimeout < 0 {
		return nil, fmt.Errorf("negative connect timeout %s", b.ConnectTimeout)
	}
	if b.UsesDNS() {
		return dnsCluster(b, lb)
	}
	c := envoy.EDSCluster(b.Name, "", b.ConnectTimeout, lb)
	if c.TransportSocket, err = backendTransportSocket(b); err != nil {
		return nil, err
	}
	if err := configureCluster(c, b); err != nil {
		return nil, err
	}
	hash, err := settingsHash(c)
	if err != nil {
		return nil, err
	}
	c.EdsClusterConfig.ServiceName = b.Name + serviceNameSeparator + hash
	return c, nil
}

// lbPolicy maps an IR load-balancing policy to Envoy's; empty means round
// robin, Envoy's default.
func lbPolicy(lb ir.LoadBalancing) (clusterv3.Cluster_LbPolicy, error) {
	switch lb {
	case ir.RoundRobin, "":
		return clusterv3.Cluster_ROUND_ROBIN, nil
	case ir.LeastRequest:
		return clusterv3.Cluster_LEAST_REQUEST, nil
	case ir.Random:
		return clusterv3.Cluster_RANDOM, nil
	case ir.RingHash:
		return clusterv3.Cluster_RING_HASH, nil
	case ir.Maglev:
		return clusterv3.Cluster_MAGLEV, nil
	}
	return 0, fmt.Errorf("unknown load balancing policy %q", lb)
}

// settingsHash returns 8 hex characters of the SHA-256 of c's deterministic
// encoding.
func settingsHash(c *clusterv3.Cluster) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("hash cluster settings: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4]), nil
}
