package envoy

import (
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// hostSelectionAttempts is how often Envoy re-picks a host for a retry
// that landed on a host already tried.
const hostSelectionAttempts = 5

// RetryOptions configure a route's retries.
type RetryOptions struct {
	// On are x-envoy-retry-on conditions ("5xx", "reset", ...).
	On            []string
	NumRetries    uint32
	PerTryTimeout time.Duration // 0: the route timeout bounds every try
	BackoffBase   time.Duration // 0: Envoy's 25 ms
	BackoffMax    time.Duration // 0: 10 × base
}

// RetryPolicy returns a retry policy that avoids the hosts already tried
// (previous_hosts predicate), so a retry does not hit the same failing
// endpoint again.
func RetryPolicy(o RetryOptions) *routev3.RetryPolicy {
	rp := &routev3.RetryPolicy{
		RetryOn:    strings.Join(o.On, ","),
		NumRetries: wrapperspb.UInt32(o.NumRetries),
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name:       "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: MustAny(&previoushostsv3.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: hostSelectionAttempts,
	}
	if o.PerTryTimeout > 0 {
		rp.PerTryTimeout = durationpb.New(o.PerTryTimeout)
	}
	if o.BackoffBase > 0 {
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(o.BackoffBase)}
		if o.BackoffMax > 0 {
			rp.RetryBackOff.MaxInterval = durationpb.New(o.BackoffMax)
		}
	}
	return rp
}
