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
// connections or resets streams, one that is starved (or stopped) answers
// late; the call moves to another replica.
const (
	grpcRetryOn          = "connect-failure,refused-stream,reset,unavailable,gateway-error"
	grpcRetries          = 2
	grpcRetryBaseBackOff = 5 * time.Millisecond
	// grpcMinPerTry is the shortest per-try timeout (see GRPCRetryPolicy).
	grpcMinPerTry = 25 * time.Millisecond
)

// GRPCRetryPolicy returns the retry policy of a side service with several
// replicas (GrpcService.retry_policy, honoured by Envoy's own gRPC client)
// whose calls time out after callTimeout: up to 2 retries, each on a host
// not tried yet (previous_hosts), on connect failure, refused or reset
// streams, gRPC UNAVAILABLE and a try that timed out (gateway-error).
//
// Envoy turns this policy into a route retry policy whose per-try timeout
// is the back-off's max_interval (Http::Utility::convertCoreToRouteRetryPolicy),
// so max_interval is half the call's timeout (at least 25 ms): a replica
// too slow to answer within it is left for another, and the retry still
// has the other half of the call's time. The back-off itself stays short:
// Envoy's jittered back-off waits less than base × 2^n (5–10 ms, then
// 10–20 ms) long before it reaches max_interval. Before, max_interval was
// 25 ms, so every try of a 200 ms ext_authz call timed out after 25 ms, and
// a try that timed out was not retried (only gateway-error or 5xx retry
// one): under CPU saturation, calls failed in 25–70 ms.
func GRPCRetryPolicy(callTimeout time.Duration) *corev3.RetryPolicy {
	return &corev3.RetryPolicy{
		RetryOn:    grpcRetryOn,
		NumRetries: wrapperspb.UInt32(grpcRetries),
		RetryBackOff: &corev3.BackoffStrategy{
			BaseInterval: durationpb.New(grpcRetryBaseBackOff),
			MaxInterval:  durationpb.New(max(callTimeout/2, grpcMinPerTry)),
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
