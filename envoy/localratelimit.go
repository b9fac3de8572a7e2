package envoy

import (
	"fmt"
	"math"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LocalRateLimitName is the name of the per-Envoy backstop of quota mode
// (its first filter: see LocalRateLimitFilterName).
const LocalRateLimitName = "envoy.filters.http.local_ratelimit"

// LocalRateLimitFilterName is the name of the backstop's filter of rank i
// (0 first): LocalRateLimitName for rank 0, then LocalRateLimitName
// ".rank<i>". Envoy finds per-route configs by filter name, so each rank
// is its own filter with its own buckets.
func LocalRateLimitFilterName(i int) string {
	if i == 0 {
		return LocalRateLimitName
	}
	return fmt.Sprintf("%s.rank%d", LocalRateLimitName, i)
}

// localStatPrefix is the stat prefix of the backstop.
const localStatPrefix = "tollgate_backstop"

// LocalRateLimitFilter returns the local_ratelimit filter of rank i
// (named LocalRateLimitFilterName(i)), disabled in the filter chain
// (HttpFilter.disabled): Envoy creates it only for a route whose config
// (LocalRateLimitRoute) enables it, so a route that does not use it pays
// no filter (an idle created one costs ~2,300 instructions per request:
// bench/README.md).
func LocalRateLimitFilter(i int) (*hcmv3.HttpFilter, error) {
	a, err := Any(&localrlv3.LocalRateLimit{StatPrefix: localStatPrefix})
	if err != nil {
		return nil, fmt.Errorf("local_ratelimit filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: LocalRateLimitFilterName(i), ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}, Disabled: true}, nil
}

// LocalDescriptor is one token bucket of the backstop: the entries a
// request's descriptor must carry (an empty Value is a wildcard: one
// bucket per distinct value, kept in an LRU) and its bucket.
type LocalDescriptor struct {
	Entries []DescriptorEntry
	// MaxTokens is the bucket; TokensPerFill are added every FillInterval
	// (whole seconds, at least 1 s).
	MaxTokens, TokensPerFill uint32
	FillInterval             time.Duration
}

// DescriptorEntry is one (key, value) of a descriptor.
type DescriptorEntry struct{ Key, Value string }

// LocalRateLimitRoute returns the per-route local_ratelimit config of the
// backstop: enabled and enforced for every request, the descriptors built
// by actions (one RateLimit per descriptor) checked against descriptors,
// at most maxDynamic buckets per wildcard descriptor, a default bucket of
// 2^32-1 tokens a second (consumed only by a request that matches no
// descriptor), 429 with Retry-After (seconds until the rejecting bucket
// has a token) and, when xHeaders, the X-RateLimit-* headers (draft 03) on
// every response the filter saw: of the rejecting bucket on a 429 it sent,
// else of the matched bucket Envoy reports (Envoy 1.40: the one with the
// smallest fill rate). Several such filters on one route would each add a
// set, so a caller enables xHeaders on one of them only.
func LocalRateLimitRoute(descriptors []LocalDescriptor, actions []*routev3.RateLimit, maxDynamic uint32, xHeaders bool) *localrlv3.LocalRateLimit {
	ds := make([]*commonrlv3.LocalRateLimitDescriptor, 0, len(descriptors))
	for _, d := range descriptors {
		entries := make([]*commonrlv3.RateLimitDescriptor_Entry, 0, len(d.Entries))
		for _, e := range d.Entries {
			entries = append(entries, &commonrlv3.RateLimitDescriptor_Entry{Key: e.Key, Value: e.Value})
		}
		ds = append(ds, &commonrlv3.LocalRateLimitDescriptor{Entries: entries, TokenBucket: &typev3.TokenBucket{
			MaxTokens:     max(1, d.MaxTokens),
			TokensPerFill: wrapperspb.UInt32(max(1, d.TokensPerFill)),
			FillInterval:  durationpb.New(max(time.Second, d.FillInterval.Truncate(time.Second))),
		}})
	}
	headers := commonrlv3.XRateLimitHeadersRFCVersion_OFF
	if xHeaders {
		headers = commonrlv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03
	}
	all := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
	return &localrlv3.LocalRateLimit{
		StatPrefix: localStatPrefix,
		Status:     &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests},
		TokenBucket: &typev3.TokenBucket{MaxTokens: math.MaxUint32, TokensPerFill: wrapperspb.UInt32(math.MaxUint32),
			FillInterval: durationpb.New(time.Second)},
		FilterEnabled:                   all,
		FilterEnforced:                  all,
		Descriptors:                     ds,
		RateLimits:                      actions,
		AlwaysConsumeDefaultTokenBucket: wrapperspb.Bool(false),
		MaxDynamicDescriptors:           wrapperspb.UInt32(max(1, maxDynamic)),
		EnableXRatelimitHeaders:         headers,
		EnableRetryAfterHeader:          true,
	}
}

// RateLimitActionMetadataDefault is RateLimitActionMetadata with a
// default value used when the metadata is absent (never skipped).
func RateLimitActionMetadataDefault(descriptorKey, namespace, key, def string) *routev3.RateLimit_Action {
	a := RateLimitActionMetadata(descriptorKey, namespace, key)
	m := a.GetMetadata()
	m.DefaultValue, m.SkipIfAbsent = def, false
	return a
}
