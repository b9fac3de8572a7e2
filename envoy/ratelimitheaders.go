package envoy

import (
	"fmt"
	"strconv"
	"strings"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// RateLimitHeadersName is the name of the composite filter that writes the
// IETF RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-
// headers) of quota mode on the responses Envoy's backstop saw.
const RateLimitHeadersName = "tollgate.ratelimit_headers"

// rateLimitHeadersNone is an ExecuteFilterAction filter chain name that no
// composite defines: Envoy 1.40 silently skips such an action (documented
// on ExecuteFilterAction.filter_chain_name), so a case mapped to it gets
// no headers, and does not fall through to the matcher's on_no_match (a
// nested matcher that matches nothing would), nor log an error per
// request (a SkipFilter action does).
const rateLimitHeadersNone = "tollgate.none"

// RateLimitHeadersFilter returns the composite filter named
// RateLimitHeadersName, disabled in the filter chain: a route enables it
// with its RateLimitHeadersRoute config. Put it after the filter that
// writes the matcher's filter state and right before the local_ratelimit
// filter whose X-RateLimit-* headers it reads: encoders run in reverse
// order, so it sees those headers on every response that filter saw
// (upstream answers and the local replies of the filters after it), and
// never the local replies of the filters before it (an RLQS denial keeps
// its own static headers).
func RateLimitHeadersFilter() (*hcmv3.HttpFilter, error) {
	a, err := Any(&compositev3.Composite{})
	if err != nil {
		return nil, fmt.Errorf("rate-limit headers filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: RateLimitHeadersName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}, Disabled: true}, nil
}

// RateLimitHeadersStaticName is the name of the header_mutation filter
// that writes the same RateLimit headers as RateLimitHeadersName on routes
// where they do not depend on the request (one tier, anonymous or extra
// limits only): no matcher and no delegated filter, ~7,000 fewer Envoy
// instructions per request than the composite.
const RateLimitHeadersStaticName = "tollgate.ratelimit_headers_static"

// RateLimitHeadersStaticFilter returns the header_mutation filter named
// RateLimitHeadersStaticName, disabled in the filter chain: a route
// enables it with its RateLimitHeadersStaticRoute config. It goes where
// RateLimitHeadersFilter goes.
func RateLimitHeadersStaticFilter() (*hcmv3.HttpFilter, error) {
	a, err := Any(&headermutationv3.HeaderMutation{})
	if err != nil {
		return nil, fmt.Errorf("rate-limit headers filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: RateLimitHeadersStaticName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}, Disabled: true}, nil
}

// RateLimitHeadersStaticRoute returns the per-route config of the
// RateLimitHeadersStaticName filter writing set (not the zero set) on
// every response the filter sees.
func RateLimitHeadersStaticRoute(set RateLimitHeaderSet) *headermutationv3.HeaderMutationPerRoute {
	return &headermutationv3.HeaderMutationPerRoute{Mutations: rateLimitMutations(set)}
}

// RateLimitHeaderSet is what one case writes: RateLimit-Policy (Policy,
// written as is) and RateLimit, `"<Name>";r=<X-RateLimit-Remaining>;t=<X-RateLimit-Reset>`
// of the same response (Name quoted as strconv.Quote does, as exact mode
// writes it). The zero value writes nothing.
type RateLimitHeaderSet struct{ Policy, Name string }

// RateLimitParts are the literal parts of set's RateLimit value around its
// two numbers: beforeR, X-RateLimit-Remaining, beforeT, X-RateLimit-Reset.
// The filter path's formatter and the Envoy module (envoymod.IETFHeaders)
// both write it from these.
func (set RateLimitHeaderSet) RateLimitParts() (beforeR, beforeT string) {
	return strconv.Quote(set.Name) + ";r=", ";t="
}

// RateLimitHeadersRoute returns the per-route config of the
// RateLimitHeadersName filter: the set of the case named by the string
// filter state object stateKey (cases), else def (an absent or unknown
// value); with stateKey "" always def. Each header replaces any of the
// same name from upstream.
func RateLimitHeadersRoute(stateKey string, cases map[string]RateLimitHeaderSet, def RateLimitHeaderSet) (*compositev3.CompositePerRoute, error) {
	onNoMatch, err := rateLimitHeadersAction(def)
	if err != nil {
		return nil, err
	}
	m := &xdsmatcherv3.Matcher{OnNoMatch: onNoMatch}
	if stateKey != "" && len(cases) > 0 {
		in, err := stateInput(stateKey)
		if err != nil {
			return nil, err
		}
		byValue := make(map[string]*xdsmatcherv3.Matcher_OnMatch, len(cases))
		for v, set := range cases {
			if byValue[v], err = rateLimitHeadersAction(set); err != nil {
				return nil, err
			}
		}
		m.MatcherType = &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{Input: in,
			TreeType: &xdsmatcherv3.Matcher_MatcherTree_ExactMatchMap{ExactMatchMap: &xdsmatcherv3.Matcher_MatcherTree_MatchMap{Map: byValue}}}}
	}
	return &compositev3.CompositePerRoute{Matcher: m}, nil
}

// rateLimitHeadersAction is the composite action writing set: a
// header_mutation filter, or no filter for the zero set.
func rateLimitHeadersAction(set RateLimitHeaderSet) (*xdsmatcherv3.Matcher_OnMatch, error) {
	exec := &compositev3.ExecuteFilterAction{FilterChainName: rateLimitHeadersNone}
	if set != (RateLimitHeaderSet{}) {
		hm, err := Any(&headermutationv3.HeaderMutation{Mutations: rateLimitMutations(set)})
		if err != nil {
			return nil, fmt.Errorf("rate-limit headers: %w", err)
		}
		exec = &compositev3.ExecuteFilterAction{TypedConfig: &corev3.TypedExtensionConfig{Name: RateLimitHeadersName, TypedConfig: hm}}
	}
	a, err := Any(exec)
	if err != nil {
		return nil, fmt.Errorf("rate-limit headers: %w", err)
	}
	return &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{
		Action: &xdscorev3.TypedExtensionConfig{Name: RateLimitHeadersName, TypedConfig: a}}}, nil
}

// rateLimitMutations write set's headers, replacing any upstream value.
func rateLimitMutations(set RateLimitHeaderSet) *headermutationv3.Mutations {
	beforeR, beforeT := set.RateLimitParts()
	return &headermutationv3.Mutations{ResponseMutations: []*mutationrulesv3.HeaderMutation{
		overwriteHeader("ratelimit-policy", formatterLiteral(set.Policy)),
		overwriteHeader("ratelimit", formatterLiteral(beforeR)+"%RESP(x-ratelimit-remaining)%"+formatterLiteral(beforeT)+"%RESP(x-ratelimit-reset)%"),
	}}
}

// overwriteHeader sets header name to the formatter string value, replacing
// any value it had.
func overwriteHeader(name, value string) *mutationrulesv3.HeaderMutation {
	return &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}}
}

// formatterLiteral escapes s for a formatter string: "%" starts a command.
func formatterLiteral(s string) string { return strings.ReplaceAll(s, "%", "%%") }
