package envoy

import (
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ClusterWeight is one target of a weighted split.
type ClusterWeight struct {
	Cluster string
	Weight  uint32
}

// RouteToWeightedClusters returns an action splitting requests across
// targets in proportion to their weights (their sum must be > 0), with
// timeout as for RouteToCluster.
func RouteToWeightedClusters(targets []ClusterWeight, timeout time.Duration) *routev3.RouteAction {
	wc := &routev3.WeightedCluster{}
	for _, t := range targets {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: t.Cluster, Weight: wrapperspb.UInt32(t.Weight)})
	}
	return &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc},
		Timeout:          durationpb.New(timeout),
	}
}
