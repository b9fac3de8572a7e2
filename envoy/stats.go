package envoy

import (
	"strings"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LatencyBucketsMs returns the histogram buckets (milliseconds) of the
// request-time histograms of HTTP connection managers, routes and
// clusters: fine enough below a second for p50/p95/p99.
func LatencyBucketsMs() []float64 {
	return []float64{0.5, 1, 2, 5, 10, 15, 25, 50, 75, 100, 150, 250, 500, 750, 1000, 2500, 5000, 10000, 30000, 60000}
}

// StatsConfig returns the bootstrap's stats settings: Envoy's default tag
// extractors (which turn vhost.<vhost>.route.<route>.upstream_rq_total into
// envoy_vhost_route_upstream_rq_total{envoy_virtual_host, envoy_route}) and
// LatencyBucketsMs for the vhost., http. and cluster. histograms.
func StatsConfig() *metricsv3.StatsConfig {
	var buckets []*metricsv3.HistogramBucketSettings
	for _, prefix := range []string{"vhost.", "http.", "cluster."} {
		buckets = append(buckets, &metricsv3.HistogramBucketSettings{
			Match:   &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix}},
			Buckets: LatencyBucketsMs(),
		})
	}
	return &metricsv3.StatsConfig{
		UseAllDefaultTags:       wrapperspb.Bool(true),
		HistogramBucketSettings: buckets,
	}
}

// StatName returns name fit to be one element of a stat name: Envoy's tag
// extractors split stat names at dots, so dots become underscores
// ("api.example.com" → "api_example_com").
func StatName(name string) string {
	return strings.ReplaceAll(name, ".", "_")
}
