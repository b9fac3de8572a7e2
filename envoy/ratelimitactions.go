package envoy

import (
	"google.golang.org/protobuf/types/known/wrapperspb"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
)

// RouteRateLimit returns one rate-limit configuration for a route's
// RouteAction.rate_limits (or a virtual host's rate_limits): the actions
// build one descriptor, appending one entry each, in order. It applies to
// the rate-limit filters of stage 0 (stage unset) and has no disable_key.
//
// With the actions below an absent value only drops its entry; an action
// that cannot produce an entry and does not skip would make Envoy send no
// descriptor at all, silently turning rate limiting off for the request.
func RouteRateLimit(actions ...*routev3.RateLimit_Action) *routev3.RateLimit {
	return &routev3.RateLimit{Actions: actions}
}

// RateLimitActionGenericKey returns the action adding the fixed entry
// (descriptorKey, value). The value is a literal: Envoy only parses it as a
// format string when the runtime flag
// enable_formatter_for_ratelimit_action_descriptor_value is on (it is off
// by default). An empty descriptorKey means Envoy's "generic_key".
func RateLimitActionGenericKey(descriptorKey, value string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
			GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: descriptorKey, DescriptorValue: value},
		},
	}
}

// RateLimitActionMetadata returns the action adding the entry
// (descriptorKey, value) where value is the string at path (a key per
// level) in the request's dynamic metadata namespace namespace (source
// DYNAMIC), for example what ext_authz published under ExtAuthzName. When
// the value is absent or not a string the entry is skipped
// (skip_if_absent) and the rest of the descriptor is still sent.
func RateLimitActionMetadata(descriptorKey, namespace string, path ...string) *routev3.RateLimit_Action {
	segments := make([]*metadatav3.MetadataKey_PathSegment, len(path))
	for i, k := range path {
		segments[i] = &metadatav3.MetadataKey_PathSegment{
			Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: k},
		}
	}
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_Metadata{
			Metadata: &routev3.RateLimit_Action_MetaData{
				DescriptorKey: descriptorKey,
				MetadataKey:   &metadatav3.MetadataKey{Key: namespace, Path: segments},
				Source:        routev3.RateLimit_Action_MetaData_DYNAMIC,
				SkipIfAbsent:  true,
			},
		},
	}
}

// RateLimitActionHeaderValueMatch returns the action adding the entry
// (descriptorKey, value) when the request's headers match every one of
// headers; otherwise the whole rate limit it belongs to is skipped (no
// descriptor), which makes that rate limit conditional.
func RateLimitActionHeaderValueMatch(descriptorKey, value string, headers ...*routev3.HeaderMatcher) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_HeaderValueMatch_{
			HeaderValueMatch: &routev3.RateLimit_Action_HeaderValueMatch{
				DescriptorKey: descriptorKey, DescriptorValue: value,
				ExpectMatch: wrapperspb.Bool(true), Headers: headers,
			},
		},
	}
}

// RateLimitActionRemoteAddress returns the action adding the entry
// ("remote_address", <client IP>): the trusted client address, which with
// HTTPConnectionManager's use_remote_address and no trusted XFF hops is the
// downstream peer's address. Its descriptor key is fixed by Envoy.
func RateLimitActionRemoteAddress() *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{
			RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{},
		},
	}
}

// RateLimitActionRequestHeaders returns the action adding the entry
// (descriptorKey, <value of request header headerName>). The header name is
// lower-cased. A request without the header skips the entry
// (skip_if_absent) and still sends the rest of the descriptor.
func RateLimitActionRequestHeaders(headerName, descriptorKey string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
			RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{
				HeaderName:    strings.ToLower(headerName),
				DescriptorKey: descriptorKey,
				SkipIfAbsent:  true,
			},
		},
	}
}

// RateLimitActionMetadataRequired is RateLimitActionMetadata except that a
// request without the value gets no descriptor at all from the rate limit
// configuration holding the action (skip_if_absent false): Envoy makes no
// rate-limit call for it. It gates a configuration on what an earlier
// filter published.
func RateLimitActionMetadataRequired(descriptorKey, namespace string, path ...string) *routev3.RateLimit_Action {
	a := RateLimitActionMetadata(descriptorKey, namespace, path...)
	a.GetMetadata().SkipIfAbsent = false
	return a
}
