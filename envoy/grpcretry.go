package envoy

import (
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// gRPC side-service retry settings: a replica that is restarting refuses
// connections or resets streams; the call moves to another replica at once.
const (
	grpcRetryOn          = "connect-failure,refused-stream,reset,unavailable"
	grpcRetries          = 2
	grpcRetryBaseBackOff = 5 * time.Millisecond
	grpcRetryMaxBackOff  = 25 * time.Millisecond
)

// GRPCRetryPolicy returns the retry policy of a side service with several
// replicas (GrpcService.retry_policy, honoured by Envoy's own gRPC client):
// up to 2 retries on connect failure, refused or reset streams and gRPC
// UNAVAILABLE, each on a host not tried yet (previous_hosts), after a 5–25
// ms back-off so the retries fit in the call's timeout.
func GRPCRetryPolicy() *corev3.RetryPolicy {
	return &corev3.RetryPolicy{
		RetryOn:    grpcRetryOn,
		NumRetries: wrapperspb.UInt32(grpcRetries),
		RetryBackOff: &corev3.BackoffStrategy{
			BaseInterval: durationpb.New(grpcRetryBaseBackOff),
			MaxInterval:  durationpb.New(grpcRetryMaxBackOff),
		},
		RetryHostPredicate: []*corev3.RetryPolicy_RetryHostPredicate{{
			Name:       "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &corev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: MustAny(&previoushostsv3.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: 3,
	}
}

// withRetry sets s's retry policy (nil leaves none) and returns s.
func withRetry(s *corev3.GrpcService, r *corev3.RetryPolicy) *corev3.GrpcService {
	s.RetryPolicy = r
	return s
}

// GRPCClusterAddrs is GRPCCluster for a comma-separated list of replicas
// ("h1:p1,h2:p2"), balanced round robin, with a retry budget
// (replicaRetryBudget). A single address gives exactly GRPCCluster's
// cluster.
func GRPCClusterAddrs(name, hostports string, connectTimeout time.Duration) (*clusterv3.Cluster, error) {
	addrs := strings.Split(hostports, ",")
	c, err := GRPCCluster(name, strings.TrimSpace(addrs[0]), connectTimeout)
	if err != nil || len(addrs) == 1 {
		return c, err
	}
	eps := make([]*endpointv3.LbEndpoint, 0, len(addrs))
	for _, a := range addrs {
		host, port, err := splitHostPort(strings.TrimSpace(a))
		if err != nil {
			return nil, err
		}
		if !isIP(host) {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		}
		eps = append(eps, LbEndpoint(host, port))
	}
	c.LoadAssignment = ClusterLoadAssignment(name, eps...)
	c.CircuitBreakers = replicaRetryBudget()
	return c, nil
}

// replicaRetryBudget replaces Envoy's default of 3 concurrent retries per
// cluster, which a stall of a few milliseconds at a few hundred calls a
// second overflows (the overflowing call then fails): retries may be half
// of the active calls, and at least 64 at a time. A retry is only ever a
// second or third attempt of a call that could not reach a replica.
func replicaRetryBudget() *clusterv3.CircuitBreakers {
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		RetryBudget: &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: 50},
			MinRetryConcurrency: wrapperspb.UInt32(64),
		},
	}}}
}

// IsAddrList reports whether hostports names several replicas.
func IsAddrList(hostports string) bool { return strings.Contains(hostports, ",") }
