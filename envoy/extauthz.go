package envoy

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ExtAuthzName is the conventional name of the external authorization HTTP
// filter, and so the key of its per-route config (ExtAuthzPerRoute*).
const ExtAuthzName = "envoy.filters.http.ext_authz"

// ExtAuthz defaults.
const (
	// DefaultExtAuthzTimeout limits one Check call when no timeout is given.
	// Never send 0: since Envoy 1.38 it means no limit at all.
	DefaultExtAuthzTimeout = 200 * time.Millisecond
	// DefaultExtAuthzStatusOnError is returned when the service fails or
	// cannot be reached: an outage, not a denial (Envoy's own default is
	// 403).
	DefaultExtAuthzStatusOnError = 503
)

// ExtAuthzOptions configure the ext_authz filter.
type ExtAuthzOptions struct {
	// Cluster is the HTTP/2 cluster of the gRPC authorization service
	// (see GRPCCluster). Required.
	Cluster string
	// Timeout of one Check call; 0 means DefaultExtAuthzTimeout.
	Timeout time.Duration
	// StatusOnError is the HTTP status returned when the service errs or
	// cannot be reached; 0 means DefaultExtAuthzStatusOnError.
	StatusOnError int
	// AllowedHeaders are the only request headers sent in the CheckRequest
	// (method, path and host travel in their own fields). Empty sends every
	// request header, Envoy's default for a gRPC service.
	AllowedHeaders []string
	// MutableHeaders are the only request headers the service may set,
	// append or remove; any other mutation fails the request with 500.
	// Empty allows none.
	MutableHeaders []string
	// Retry, when set, retries a Check that failed to reach a replica on
	// another one (GRPCRetryPolicy; grpcretry.go).
	Retry *corev3.RetryPolicy
	// SkipWhen, when set, turns the filter off for a request whose
	// dynamic metadata it matches (filter_enabled_metadata with the
	// matcher inverted): no Check call at all. Another filter must have
	// authenticated such a request.
	SkipWhen *matcherv3.MetadataMatcher
}

// ExtAuthz returns a fail-closed ext_authz filter config calling the gRPC
// service on o.Cluster (transport API V3):
//   - failure_mode_allow false: an unreachable or failing service denies
//     with status_on_error;
//   - allowed_headers limited to o.AllowedHeaders; no peer certificate;
//   - validate_mutations: a response with invalid header values fails the
//     request (500);
//   - decoder_header_mutation_rules: disallow_all, except the headers in
//     o.MutableHeaders (allow_expression, an exact-name alternation), and
//     never ":"-prefixed ones; a disallowed mutation is an error (500);
//   - clear_route_cache false: the service's mutations never re-route;
//   - emit_filter_state_stats, for access logs.
//
// The service's dynamic metadata lands in the namespace ExtAuthzName.
func ExtAuthz(o ExtAuthzOptions) *extauthzv3.ExtAuthz {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultExtAuthzTimeout
	}
	status := o.StatusOnError
	if status == 0 {
		status = DefaultExtAuthzStatusOnError
	}
	return &extauthzv3.ExtAuthz{
		Services:                   &extauthzv3.ExtAuthz_GrpcService{GrpcService: withRetry(GRPCService(o.Cluster, timeout), o.Retry)},
		TransportApiVersion:        corev3.ApiVersion_V3,
		FailureModeAllow:           false,
		StatusOnError:              &typev3.HttpStatus{Code: typev3.StatusCode(status)},
		IncludePeerCertificate:     false,
		AllowedHeaders:             exactNames(o.AllowedHeaders),
		ValidateMutations:          true,
		DecoderHeaderMutationRules: onlyHeaders(o.MutableHeaders),
		ClearRouteCache:            false,
		EmitFilterStateStats:       true,
		FilterEnabledMetadata:      invertedMatcher(o.SkipWhen),
	}
}

// invertedMatcher returns a copy of m matching what m does not, or nil.
func invertedMatcher(m *matcherv3.MetadataMatcher) *matcherv3.MetadataMatcher {
	if m == nil {
		return nil
	}
	out := proto.Clone(m).(*matcherv3.MetadataMatcher)
	out.Invert = !m.GetInvert()
	return out
}

// ExtAuthzFilter wraps ExtAuthz(o) as the HTTP filter named ExtAuthzName.
// It fails only if o cannot be marshalled (invalid UTF-8).
func ExtAuthzFilter(o ExtAuthzOptions) (*hcmv3.HttpFilter, error) {
	a, err := Any(ExtAuthz(o))
	if err != nil {
		return nil, fmt.Errorf("ext_authz filter: %w", err)
	}
	return &hcmv3.HttpFilter{
		Name:       ExtAuthzName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a},
	}, nil
}

// ExtAuthzPerRouteDisabled returns the per-route config that skips the
// ext_authz filter on a route (no Check call at all).
func ExtAuthzPerRouteDisabled() *extauthzv3.ExtAuthzPerRoute {
	return &extauthzv3.ExtAuthzPerRoute{
		Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true},
	}
}

// ExtAuthzPerRouteCheck returns the per-route config that sends
// contextExtensions in every CheckRequest of the route
// (attributes.context_extensions). The map is used as is, not copied.
func ExtAuthzPerRouteCheck(contextExtensions map[string]string) *extauthzv3.ExtAuthzPerRoute {
	return &extauthzv3.ExtAuthzPerRoute{
		Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
			CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: contextExtensions},
		},
	}
}

// exactNames matches exactly the given header names (lower-cased, sorted,
// deduplicated), or returns nil when there are none.
func exactNames(names []string) *matcherv3.ListStringMatcher {
	names = headerNames(names)
	if len(names) == 0 {
		return nil
	}
	patterns := make([]*matcherv3.StringMatcher, len(names))
	for i, n := range names {
		patterns[i] = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}}
	}
	return &matcherv3.ListStringMatcher{Patterns: patterns}
}

// onlyHeaders returns mutation rules that allow changes to exactly the
// given headers and reject any other change as an error.
func onlyHeaders(names []string) *mutationrulesv3.HeaderMutationRules {
	rules := &mutationrulesv3.HeaderMutationRules{
		DisallowAll:     wrapperspb.Bool(true),
		DisallowSystem:  wrapperspb.Bool(true),
		DisallowIsError: wrapperspb.Bool(true),
	}
	if names = headerNames(names); len(names) > 0 {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = regexp.QuoteMeta(n)
		}
		rules.AllowExpression = SafeRegex("^(" + strings.Join(quoted, "|") + ")$")
	}
	return rules
}
