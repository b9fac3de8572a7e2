package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RateLimitName is the conventional name of the global rate-limit HTTP
// filter.
const RateLimitName = "envoy.filters.http.ratelimit"

// RateLimit defaults.
const (
	// DefaultRateLimitTimeout limits one ShouldRateLimit call when no
	// timeout is given (Envoy's own default is 20ms). Never send 0: since
	// Envoy 1.38 it means no limit at all.
	DefaultRateLimitTimeout = 100 * time.Millisecond
	// DefaultRateLimitStatusOnError is returned when the filter fails closed
	// and the service errs or cannot be reached (Envoy's default is 500).
	DefaultRateLimitStatusOnError = 503
)

// rateLimitRequestTypeBoth applies the filter to internal and external
// requests alike (x-envoy-internal set or not).
const rateLimitRequestTypeBoth = "both"

// RateLimitOptions configure the global rate-limit filter.
type RateLimitOptions struct {
	// Domain of every RateLimitRequest. Required.
	Domain string
	// Cluster is the HTTP/2 cluster of the gRPC rate-limit service (see
	// GRPCCluster). Required.
	Cluster string
	// Timeout of one ShouldRateLimit call; 0 means DefaultRateLimitTimeout.
	Timeout time.Duration
	// FailureModeDeny rejects requests with StatusOnError when the service
	// errs, times out or cannot be reached; false admits them (fail open).
	FailureModeDeny bool
	// StatusOnError is the HTTP status of such a rejection; 0 means
	// DefaultRateLimitStatusOnError. Ignored unless FailureModeDeny.
	StatusOnError int
	// Retry, when set, retries a call that failed to reach a replica on
	// another one (GRPCRetryPolicy; grpcretry.go).
	Retry *corev3.RetryPolicy
}

// RateLimit returns a global rate-limit filter config calling the gRPC
// rate-limit service on o.Cluster (transport API V3) in domain o.Domain:
//   - stage 0, request_type "both": every request whose route has
//     rate_limits (RouteAction.rate_limits of stage 0) is checked;
//   - timeout o.Timeout, always set explicitly;
//   - failure_mode_deny o.FailureModeDeny, with status_on_error when true;
//   - enable_x_ratelimit_headers OFF: the service itself returns the
//     X-RateLimit-* and RateLimit/RateLimit-Policy headers
//     (response_headers_to_add), so Envoy must not add its own;
//   - rate_limited_as_resource_exhausted false: a limited gRPC call gets
//     UNAVAILABLE, a limited HTTP request 429 (Envoy's defaults).
//
// The filter-level rate_limits field stays empty: it would make Envoy ignore
// the routes' rate_limits.
func RateLimit(o RateLimitOptions) *ratelimitv3.RateLimit {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultRateLimitTimeout
	}
	rl := &ratelimitv3.RateLimit{
		Domain:      o.Domain,
		Stage:       0,
		RequestType: rateLimitRequestTypeBoth,
		Timeout:     durationpb.New(timeout),
		RateLimitService: &ratelimitconfigv3.RateLimitServiceConfig{
			// The filter's timeout bounds the call; the gRPC service's own
			// timeout is not used by the rate-limit client.
			GrpcService:         withRetry(GRPCService(o.Cluster, 0), o.Retry),
			TransportApiVersion: corev3.ApiVersion_V3,
		},
		FailureModeDeny:                o.FailureModeDeny,
		EnableXRatelimitHeaders:        ratelimitv3.RateLimit_OFF,
		RateLimitedAsResourceExhausted: false,
	}
	if o.FailureModeDeny {
		status := o.StatusOnError
		if status == 0 {
			status = DefaultRateLimitStatusOnError
		}
		rl.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(status)}
	}
	return rl
}

// RateLimitFilter wraps RateLimit(o) as the HTTP filter named RateLimitName.
// It fails only if o cannot be marshalled (invalid UTF-8).
func RateLimitFilter(o RateLimitOptions) (*hcmv3.HttpFilter, error) {
	a, err := Any(RateLimit(o))
	if err != nil {
		return nil, fmt.Errorf("ratelimit filter: %w", err)
	}
	return &hcmv3.HttpFilter{
		Name:       RateLimitName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a},
	}, nil
}
