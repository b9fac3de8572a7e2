package translator

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tollgate/tollgate/envoy"
)

// replicaRetry is the retry policy of a side service's gRPC calls: with
// several replicas ("h1:p1,h2:p2") a call that cannot reach one (it is
// restarting: connection refused, stream refused or reset, UNAVAILABLE) is
// retried at once on another, so a rolling restart of the ext_authz or
// rate-limit replicas costs no request; a try a starved replica does not
// answer within half of callTimeout moves to another one too. One replica
// gets no retries (there is nowhere else to go), which keeps
// single-replica output unchanged.
func replicaRetry(addrs string, callTimeout time.Duration) *corev3.RetryPolicy {
	if !envoy.IsAddrList(addrs) {
		return nil
	}
	return envoy.GRPCRetryPolicy(callTimeout)
}
