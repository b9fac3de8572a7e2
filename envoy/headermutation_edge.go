package envoy

import (
	"slices"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Internal response headers: Server, and every x-envoy-* header (Envoy's
// own, or an upstream's).
const (
	serverHeader       = "server"
	internalHeaderPref = "x-envoy-"
)

// OriginalPathHeader is where Envoy's router records the path a route
// rewrote (the access log's path prefers it). Only Envoy may set it: the
// edge filter removes a client's copy, so neither the upstream nor the
// access log can be fooled by a forged one.
const OriginalPathHeader = "x-envoy-original-path"

// EdgeHeaderMutationFilter is HeaderMutationFilter(removeRequestHeaders...,
// OriginalPathHeader) that, when stripInternal, also removes the Server
// header and every x-envoy-* header from every response. As the first
// filter of the chain it is the first to see a request (nothing before it
// reads a client's copy of those headers) and the last to see a response,
// local replies of later filters included.
func EdgeHeaderMutationFilter(removeRequestHeaders []string, stripInternal bool) (*hcmv3.HttpFilter, error) {
	removeRequestHeaders = append(slices.Clip(removeRequestHeaders), OriginalPathHeader)
	if !stripInternal {
		return HeaderMutationFilter(removeRequestHeaders...)
	}
	cfg := HeaderMutation(removeRequestHeaders...)
	cfg.Mutations.ResponseMutations = []*mutationrulesv3.HeaderMutation{
		{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: serverHeader}},
		{Action: &mutationrulesv3.HeaderMutation_RemoveOnMatch_{RemoveOnMatch: &mutationrulesv3.HeaderMutation_RemoveOnMatch{
			KeyMatcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: internalHeaderPref}},
		}}},
	}
	a, err := Any(cfg)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: HeaderMutationName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// HeaderMutationPerRoute returns the per-route config of the header
// mutation filter that removes removeRequestHeaders from the request and
// changes its query parameters as c says (add appends a value, set replaces
// the parameter's values, remove drops it), or nil when there is nothing
// to change. The filter's own mutations still apply.
func HeaderMutationPerRoute(removeRequestHeaders []string, c HeaderChanges) *headermutationv3.HeaderMutationPerRoute {
	names := headerNames(removeRequestHeaders)
	if len(names) == 0 && len(c.Add)+len(c.Set)+len(c.Remove) == 0 {
		return nil
	}
	m := &headermutationv3.Mutations{QueryParameterMutations: queryMutations(c)}
	for _, n := range names {
		m.RequestMutations = append(m.RequestMutations, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: n}})
	}
	return &headermutationv3.HeaderMutationPerRoute{Mutations: m}
}

// queryMutations returns the query parameter mutations of c.
func queryMutations(c HeaderChanges) []*corev3.KeyValueMutation {
	var ms []*corev3.KeyValueMutation
	kv := func(h Header, action corev3.KeyValueAppend_KeyValueAppendAction) *corev3.KeyValueMutation {
		return &corev3.KeyValueMutation{Append: &corev3.KeyValueAppend{
			Record: &corev3.KeyValuePair{Key: h.Name, Value: structpb.NewStringValue(h.Value)},
			Action: action,
		}}
	}
	for _, h := range c.Add {
		ms = append(ms, kv(h, corev3.KeyValueAppend_APPEND_IF_EXISTS_OR_ADD))
	}
	for _, h := range c.Set {
		ms = append(ms, kv(h, corev3.KeyValueAppend_OVERWRITE_IF_EXISTS_OR_ADD))
	}
	for _, n := range c.Remove {
		ms = append(ms, &corev3.KeyValueMutation{Remove: n})
	}
	return ms
}
