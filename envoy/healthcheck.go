package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// HTTPHealthCheckOptions configure an active HTTP health check.
type HTTPHealthCheckOptions struct {
	Path               string
	Interval, Timeout  time.Duration
	HealthyThreshold   uint32
	UnhealthyThreshold uint32
	// ExpectedStatuses are single codes; each becomes the range [s, s+1).
	ExpectedStatuses []uint32
}

// HTTPHealthCheck returns an active health check that GETs o.Path on each
// endpoint every o.Interval. It uses the interval for clusters without
// traffic too (Envoy's no_traffic_interval defaults to 60 s) and for
// unhealthy hosts, so a host's state changes within interval × threshold;
// a failed check is a timeout, a connection error or a status outside
// ExpectedStatuses, all counted towards the unhealthy threshold.
func HTTPHealthCheck(o HTTPHealthCheckOptions) *corev3.HealthCheck {
	statuses := make([]*typev3.Int64Range, 0, len(o.ExpectedStatuses))
	for _, s := range o.ExpectedStatuses {
		statuses = append(statuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
	}
	return &corev3.HealthCheck{
		Timeout:            durationpb.New(o.Timeout),
		Interval:           durationpb.New(o.Interval),
		NoTrafficInterval:  durationpb.New(o.Interval),
		UnhealthyInterval:  durationpb.New(o.Interval),
		HealthyThreshold:   wrapperspb.UInt32(o.HealthyThreshold),
		UnhealthyThreshold: wrapperspb.UInt32(o.UnhealthyThreshold),
		HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{
			HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
				Path: o.Path, ExpectedStatuses: statuses,
				// Every unexpected status counts towards the unhealthy
				// threshold (by default Envoy marks the host unhealthy on the
				// first one; only timeouts and connection errors count).
				RetriableStatuses: []*typev3.Int64Range{{Start: 100, End: 600}},
			},
		},
	}
}

// maxUpdateMergeWindow is Envoy's default update_merge_window.
const maxUpdateMergeWindow = time.Second

// HealthCheckLbConfig returns the common LB settings of a cluster health
// checked every interval: host health changes reach the load balancer
// merged over at most one interval (Envoy merges them over 1 s by default,
// which would delay a recovered host by up to a second after its check).
func HealthCheckLbConfig(interval time.Duration) *clusterv3.Cluster_CommonLbConfig {
	return &clusterv3.Cluster_CommonLbConfig{UpdateMergeWindow: durationpb.New(min(interval, maxUpdateMergeWindow))}
}
