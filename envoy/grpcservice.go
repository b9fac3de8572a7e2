package envoy

import (
	"fmt"
	"net"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// GRPCCluster returns the cluster of a gRPC service listening at hostport
// ("host:port"): HTTP/2 with keepalive (HTTP2ProtocolOptions), endpoints
// inline (StaticCluster: STATIC for an IP address, STRICT_DNS for a host
// name), so it needs no ClusterLoadAssignment over EDS.
//
// It fails if hostport is not host:port with a port in 1-65535.
// connectTimeout 0 leaves Envoy's default (5s).
func GRPCCluster(name, hostport string, connectTimeout time.Duration) (*clusterv3.Cluster, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	c := StaticCluster(name, connectTimeout, LbEndpoint(host, port))
	c.TypedExtensionProtocolOptions = HTTP2ProtocolOptions()
	return c, nil
}

// GRPCService returns a gRPC client definition that calls the service
// through Envoy's own gRPC client on the cluster named cluster, each call
// limited to timeout. The timeout is always set: Envoy treats an explicit 0
// as no limit, so a non-positive timeout is sent as unset and the caller
// (for example ExtAuthz) must pick a positive default.
func GRPCService(cluster string, timeout time.Duration) *corev3.GrpcService {
	s := &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster},
		},
	}
	if timeout > 0 {
		s.Timeout = durationpb.New(timeout)
	}
	return s
}

// splitHostPort parses "host:port" ("[v6]:port" for IPv6) with a non-empty
// host and a port in 1-65535.
func splitHostPort(hostport string) (string, uint32, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("address %q: want host:port with a port in 1-65535", hostport)
	}
	return host, uint32(port), nil
}
