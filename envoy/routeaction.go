package envoy

import (
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RouteToCluster returns an action forwarding to the cluster named cluster,
// with timeout as the limit on the whole upstream exchange. The timeout is
// always set explicitly: 0 disables it (Envoy's default when unset is 15s).
func RouteToCluster(cluster string, timeout time.Duration) *routev3.RouteAction {
	return &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		Timeout:          durationpb.New(timeout),
	}
}
