package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// HTTPCluster returns the cluster of a plain HTTP/1.1 service listening at
// hostport ("host:port"), its endpoint inline (StaticCluster: STATIC for an
// IP address, STRICT_DNS for a host name). connectTimeout 0 leaves Envoy's
// default (5s).
func HTTPCluster(name, hostport string, connectTimeout time.Duration) (*clusterv3.Cluster, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	return StaticCluster(name, connectTimeout, LbEndpoint(host, port)), nil
}
