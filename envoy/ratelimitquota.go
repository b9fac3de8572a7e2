package envoy

import (
	"fmt"
	"time"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	setfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	rlqv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rate_limit_quota/v3"
	httpsetfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	networkinputsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of the HTTP filters of the in-Envoy rate limiting (quota mode).
const (
	RateLimitQuotaName = "envoy.filters.http.rate_limit_quota"
	// QuotaStateName is the set_filter_state filter that writes the
	// bucket keys the RLQS matchers read.
	QuotaStateName = "tollgate.quota_state"
)

// quotaReportingInterval is the per-bucket reporting interval. Envoy 1.40
// accepts the field but reports every 5 s whatever it says.
const quotaReportingInterval = 5 * time.Second

// FilterStateValue is one string filter state object written from an
// Envoy substitution format (e.g. "%ROUTE_NAME%").
type FilterStateValue struct {
	Key    string
	Format string
}

// QuotaStateFilter returns the set_filter_state filter named
// QuotaStateName that stores each value as the string filter state object
// Key, formatted on the request headers. An absent command output is
// written as an empty string (omit_empty_values), which no RLQS matcher
// accepts as a key.
func QuotaStateFilter(values []FilterStateValue) (*hcmv3.HttpFilter, error) {
	vs := make([]*setfilterstatev3.FilterStateValue, 0, len(values))
	for _, v := range values {
		vs = append(vs, &setfilterstatev3.FilterStateValue{
			Key:        &setfilterstatev3.FilterStateValue_ObjectKey{ObjectKey: v.Key},
			FactoryKey: stringFactory,
			Value: &setfilterstatev3.FilterStateValue_FormatString{FormatString: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
					Specifier: &corev3.DataSource_InlineString{InlineString: v.Format},
				}},
				OmitEmptyValues: true,
			}},
		})
	}
	a, err := Any(&httpsetfilterstatev3.Config{OnRequestHeaders: vs})
	if err != nil {
		return nil, fmt.Errorf("quota state filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: QuotaStateName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// RLQS stream retry settings (see RLQSStreamRetryPolicy).
const (
	rlqsRetryOn          = "connect-failure,refused-stream,reset,unavailable"
	rlqsRetries          = 100000
	rlqsRetryBaseBackOff = 100 * time.Millisecond
	rlqsRetryMaxBackOff  = 500 * time.Millisecond
)

// RLQSStreamRetryPolicy is the retry policy of the RLQS stream
// (GrpcService.retry_policy, which Envoy's gRPC client applies to streams
// too: Grpc::AsyncStreamImpl takes its parent client's policy). It is what
// brings a restarted RLQS server its Envoys back within a second.
//
// Envoy 1.40 opens the RLQS stream at the first bucket of its client and
// reopens it only on its 5 s report timer
// (rate_limit_quota/global_client_impl.cc: createBucketImpl,
// onSendReportsTimer); a closed stream is just forgotten (onRemoteClose),
// so without retries a stream that finds the server down at a tick fails
// at once, the usage report in it is dropped, and a restarted server hears
// from the Envoy only at the first tick after it is back (up to 5 s; with
// failureMode closed and the assignment expired, everything is refused
// meanwhile). With this policy the stream opened at that tick does not
// fail: the router retries the connection every 0–500 ms (jittered
// exponential back-off from 100 ms) on connect failure, a refused or reset
// stream or UNAVAILABLE, while the report timer keeps writing reports
// into the waiting stream; when the server is back the next try connects,
// the waiting reports are delivered and answered with assignments
// (~0.1–0.6 s after the restart, whatever the tick's phase). Nothing is
// retried once the server has sent response headers (the RLQS server sends
// them as soon as the stream opens), so a report a live server has seen is
// never replayed. 100,000 retries wait hours. An outage longer than that,
// or waiting reports outgrowing Envoy's fixed 64 KiB retry buffer (a
// report lists every bucket the Envoy has seen, ~70–100 bytes each), ends
// the stream and the next tick opens a new one (Envoy's behaviour without
// the policy). No
// per-try timeout applies: Envoy arms one only when the request ends, and
// the RLQS stream never does.
func RLQSStreamRetryPolicy() *corev3.RetryPolicy {
	return &corev3.RetryPolicy{
		RetryOn:    rlqsRetryOn,
		NumRetries: wrapperspb.UInt32(rlqsRetries),
		RetryBackOff: &corev3.BackoffStrategy{
			BaseInterval: durationpb.New(rlqsRetryBaseBackOff),
			MaxInterval:  durationpb.New(rlqsRetryMaxBackOff),
		},
	}
}

// RateLimitQuotaFilter returns the rate_limit_quota filter calling the
// RLQS server on the HTTP/2 cluster cluster in domain, with the bucket
// matcher tree matchers (see QuotaMatch*). It is enabled and enforced for
// every request; its stream is retried (RLQSStreamRetryPolicy).
func RateLimitQuotaFilter(cluster, domain string, matchers *xdsmatcherv3.Matcher) (*hcmv3.HttpFilter, error) {
	a, err := Any(&rlqv3.RateLimitQuotaFilterConfig{
		RlqsServer:     withRetry(GRPCService(cluster, 0), RLQSStreamRetryPolicy()),
		Domain:         domain,
		BucketMatchers: matchers,
	})
	if err != nil {
		return nil, fmt.Errorf("rate_limit_quota filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: RateLimitQuotaName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// BlanketRule is what a bucket does without a (live) assignment. Only
// blanket rules are offered: Envoy 1.40 crashes on a token-bucket
// no-assignment fallback, so this API cannot express one.
type BlanketRule int

// Blanket rules.
const (
	AllowAll BlanketRule = iota
	DenyAll
)

func (r BlanketRule) strategy() *typev3.RateLimitStrategy {
	rule := typev3.RateLimitStrategy_ALLOW_ALL
	if r == DenyAll {
		rule = typev3.RateLimitStrategy_DENY_ALL
	}
	return &typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_BlanketRule_{BlanketRule: rule}}
}

// QuotaBucket configures one bucket of the RLQS matcher tree.
type QuotaBucket struct {
	// Static entries of the bucket id.
	Static map[string]string
	// FromState entries: bucket id key → filter state key (the value is
	// the string object's value; the id cannot be built without it).
	FromState map[string]string
	// NoAssignment applies before the first assignment.
	NoAssignment BlanketRule
	// Expired applies for ExpiredFor once an assignment expired unrenewed
	// (then NoAssignment again).
	Expired    BlanketRule
	ExpiredFor time.Duration
	// Denials are answered with DenyStatus, DenyBody (JSON) and
	// DenyHeaders.
	DenyStatus  int
	DenyBody    string
	DenyHeaders []Header
}

// QuotaBucketAction returns the matcher action that puts a request in b.
func QuotaBucketAction(b QuotaBucket) (*xdsmatcherv3.Matcher_OnMatch, error) {
	id := map[string]*rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder_ValueBuilder{}
	for k, v := range b.Static {
		id[k] = &rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder_ValueBuilder{
			ValueSpecifier: &rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder_ValueBuilder_StringValue{StringValue: v}}
	}
	for k, key := range b.FromState {
		in, err := Any(&networkinputsv3.FilterStateInput{Key: key})
		if err != nil {
			return nil, err
		}
		id[k] = &rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder_ValueBuilder{
			ValueSpecifier: &rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder_ValueBuilder_CustomValue{
				CustomValue: &corev3.TypedExtensionConfig{Name: "filter_state:" + key, TypedConfig: in}}}
	}
	headers := make([]*corev3.HeaderValueOption, 0, len(b.DenyHeaders))
	for _, h := range b.DenyHeaders {
		headers = append(headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	}
	settings := &rlqv3.RateLimitQuotaBucketSettings{
		BucketIdBuilder:   &rlqv3.RateLimitQuotaBucketSettings_BucketIdBuilder{BucketIdBuilder: id},
		ReportingInterval: durationpb.New(quotaReportingInterval),
		DenyResponseSettings: &rlqv3.RateLimitQuotaBucketSettings_DenyResponseSettings{
			HttpStatus:           &typev3.HttpStatus{Code: typev3.StatusCode(b.DenyStatus)},
			HttpBody:             wrapperspb.Bytes([]byte(b.DenyBody)),
			ResponseHeadersToAdd: headers,
		},
		NoAssignmentBehavior: &rlqv3.RateLimitQuotaBucketSettings_NoAssignmentBehavior{
			NoAssignmentBehavior: &rlqv3.RateLimitQuotaBucketSettings_NoAssignmentBehavior_FallbackRateLimit{
				FallbackRateLimit: b.NoAssignment.strategy()}},
		ExpiredAssignmentBehavior: &rlqv3.RateLimitQuotaBucketSettings_ExpiredAssignmentBehavior{
			ExpiredAssignmentBehaviorTimeout: durationpb.New(b.ExpiredFor.Truncate(time.Second)),
			ExpiredAssignmentBehavior: &rlqv3.RateLimitQuotaBucketSettings_ExpiredAssignmentBehavior_FallbackRateLimit{
				FallbackRateLimit: b.Expired.strategy()}},
	}
	a, err := Any(settings)
	if err != nil {
		return nil, fmt.Errorf("quota bucket: %w", err)
	}
	return &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{
		Action: &xdscorev3.TypedExtensionConfig{Name: "bucket", TypedConfig: a}}}, nil
}

// QuotaMatchState returns a matcher on the string filter state object key:
// an exact match map from its value to cases, and onNoMatch (may be nil)
// for any other value or none.
func QuotaMatchState(key string, cases map[string]*xdsmatcherv3.Matcher_OnMatch, onNoMatch *xdsmatcherv3.Matcher_OnMatch) (*xdsmatcherv3.Matcher, error) {
	in, err := stateInput(key)
	if err != nil {
		return nil, err
	}
	return &xdsmatcherv3.Matcher{
		MatcherType: &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{
			Input: in,
			TreeType: &xdsmatcherv3.Matcher_MatcherTree_ExactMatchMap{
				ExactMatchMap: &xdsmatcherv3.Matcher_MatcherTree_MatchMap{Map: cases}},
		}},
		OnNoMatch: onNoMatch,
	}, nil
}

// QuotaRequireState returns a matcher that goes on to then when the string
// filter state object key holds a non-empty value, and to otherwise when
// it is empty or absent.
func QuotaRequireState(key string, then, otherwise *xdsmatcherv3.Matcher_OnMatch) (*xdsmatcherv3.Matcher, error) {
	in, err := stateInput(key)
	if err != nil {
		return nil, err
	}
	present := &xdsmatcherv3.Matcher_MatcherList_Predicate{MatchType: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_{
		SinglePredicate: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate{
			Input: in,
			Matcher: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{ValueMatch: &xdsmatcherv3.StringMatcher{
				MatchPattern: &xdsmatcherv3.StringMatcher_SafeRegex{SafeRegex: &xdsmatcherv3.RegexMatcher{Regex: ".+",
					EngineType: &xdsmatcherv3.RegexMatcher_GoogleRe2{GoogleRe2: &xdsmatcherv3.RegexMatcher_GoogleRE2{}}}}}},
		}}}
	return &xdsmatcherv3.Matcher{
		MatcherType: &xdsmatcherv3.Matcher_MatcherList_{MatcherList: &xdsmatcherv3.Matcher_MatcherList{
			Matchers: []*xdsmatcherv3.Matcher_MatcherList_FieldMatcher{{Predicate: present, OnMatch: then}},
		}},
		OnNoMatch: otherwise,
	}, nil
}

// QuotaOnMatcher wraps a nested matcher as a match outcome.
func QuotaOnMatcher(m *xdsmatcherv3.Matcher) *xdsmatcherv3.Matcher_OnMatch {
	return &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Matcher{Matcher: m}}
}

func stateInput(key string) (*xdscorev3.TypedExtensionConfig, error) {
	in, err := Any(&networkinputsv3.FilterStateInput{Key: key})
	if err != nil {
		return nil, err
	}
	return &xdscorev3.TypedExtensionConfig{Name: "filter_state:" + key, TypedConfig: in}, nil
}
