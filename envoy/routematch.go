package envoy

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// RouteMatchPath matches requests whose path (without the query string)
// equals path, and that satisfy every header matcher.
func RouteMatchPath(path string, headers ...*routev3.HeaderMatcher) *routev3.RouteMatch {
	return &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Path{Path: path},
		Headers:       headers,
	}
}

// RouteMatchPrefix matches requests whose path starts with prefix (a plain
// string prefix: "/api" also matches "/apis"), and that satisfy every header
// matcher.
func RouteMatchPrefix(prefix string, headers ...*routev3.HeaderMatcher) *routev3.RouteMatch {
	return &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix},
		Headers:       headers,
	}
}

// RouteMatchRegex matches requests whose whole path (without the query
// string) matches the RE2 expression regex, and that satisfy every header
// matcher.
func RouteMatchRegex(regex string, headers ...*routev3.HeaderMatcher) *routev3.RouteMatch {
	return &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: SafeRegex(regex)},
		Headers:       headers,
	}
}
