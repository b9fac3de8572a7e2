package envoy

import (
	"fmt"

	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// RBACName is the name of the role-based access control HTTP filter.
const RBACName = "envoy.filters.http.rbac"

// RBACFilter returns the RBAC filter whose listener-wide rules deny
// nothing: routes bring their rules with RBACPerRouteDeny. The classic
// policy form is used on purpose: in Envoy 1.40 a DynamicMetadataInput in
// the unified matcher validates but never matches.
func RBACFilter() (*hcmv3.HttpFilter, error) {
	a, err := Any(&rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY}})
	if err != nil {
		return nil, fmt.Errorf("rbac filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: RBACName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// RBACPerRouteDeny returns a route's rules: a request matching the
// principal of one of policies (name → principal) is denied with 403 and
// the response code details "rbac_access_denied_matched_policy[<name>]"
// (Envoy evaluates the names in lexical order and reports the first
// match). A CORS preflight is a request like any other here: on routes
// with cors the CORS filter answers it before RBAC runs.
func RBACPerRouteDeny(policies map[string]*rbacconfigv3.Principal) *rbacv3.RBACPerRoute {
	ps := make(map[string]*rbacconfigv3.Policy, len(policies))
	for name, p := range policies {
		ps[name] = &rbacconfigv3.Policy{
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfigv3.Principal{p},
		}
	}
	return &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY, Policies: ps}}}
}

// RBACPerRouteDisabled turns the RBAC filter off on a route.
func RBACPerRouteDisabled() *rbacv3.RBACPerRoute { return &rbacv3.RBACPerRoute{} }

// PrincipalNot matches when p does not.
func PrincipalNot(p *rbacconfigv3.Principal) *rbacconfigv3.Principal {
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_NotId{NotId: p}}
}

// PrincipalAnd matches when every one of ps does.
func PrincipalAnd(ps ...*rbacconfigv3.Principal) *rbacconfigv3.Principal {
	if len(ps) == 1 {
		return ps[0]
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_AndIds{AndIds: &rbacconfigv3.Principal_Set{Ids: ps}}}
}

// PrincipalOr matches when one of ps does.
func PrincipalOr(ps ...*rbacconfigv3.Principal) *rbacconfigv3.Principal {
	if len(ps) == 1 {
		return ps[0]
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: ps}}}
}

// PrincipalMetadata matches when the dynamic metadata value at path in
// namespace matches v (sourced_metadata, source DYNAMIC).
func PrincipalMetadata(namespace string, path []string, v *matcherv3.ValueMatcher) *rbacconfigv3.Principal {
	segs := make([]*matcherv3.MetadataMatcher_PathSegment, len(path))
	for i, k := range path {
		segs[i] = &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: k}}
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_SourcedMetadata{SourcedMetadata: &rbacconfigv3.SourcedMetadata{
		MetadataMatcher: &matcherv3.MetadataMatcher{Filter: namespace, Path: segs, Value: v},
	}}}
}

// MetadataMatch matches the dynamic metadata value at path in namespace
// against v.
func MetadataMatch(namespace string, path []string, v *matcherv3.ValueMatcher) *matcherv3.MetadataMatcher {
	return PrincipalMetadata(namespace, path, v).GetSourcedMetadata().GetMetadataMatcher()
}

// ValueStringExact matches a string value equal to s.
func ValueStringExact(s string) *matcherv3.ValueMatcher {
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}}}
}

// ValueStringRegex matches a string value that the RE2 regex matches as a
// whole.
func ValueStringRegex(regex string) *matcherv3.ValueMatcher {
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: SafeRegex(regex)}}}}
}

// ValueListContains matches a list value holding the string s.
func ValueListContains(s string) *matcherv3.ValueMatcher {
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
		MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: ValueStringExact(s)}}}}
}

// ValuePresent matches any value that is present.
func ValuePresent() *matcherv3.ValueMatcher {
	return &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}}
}
