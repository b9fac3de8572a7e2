package envoy

import (
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// MethodHeader is the pseudo-header Envoy matches the request method on.
const MethodHeader = ":method"

// HeaderMatchExact matches when header name is present with exactly value.
func HeaderMatchExact(name, value string) *routev3.HeaderMatcher {
	return headerStringMatch(name, &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value},
	})
}

// HeaderMatchPrefix matches when header name is present and its value starts
// with prefix, which must not be empty.
func HeaderMatchPrefix(name, prefix string) *routev3.HeaderMatcher {
	return headerStringMatch(name, &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix},
	})
}

// HeaderMatchContains matches when header name is present and its value
// (several values joined with ",") contains substr: a substring search,
// cheaper per request than a regular expression.
func HeaderMatchContains(name, substr string) *routev3.HeaderMatcher {
	return headerStringMatch(name, &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Contains{Contains: substr},
	})
}

// HeaderMatchRegex matches when header name is present and its whole value
// matches the RE2 expression regex.
func HeaderMatchRegex(name, regex string) *routev3.HeaderMatcher {
	return headerStringMatch(name, &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: SafeRegex(regex)},
	})
}

// HeaderMatchNotRegex matches when header name is absent or its whole value
// does not match the RE2 expression regex.
func HeaderMatchNotRegex(name, regex string) *routev3.HeaderMatcher {
	m := HeaderMatchRegex(name, regex)
	m.InvertMatch = true
	return m
}

// HeaderMatchPresent matches when header name is present, whatever its value.
func HeaderMatchPresent(name string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{
		Name:                 name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true},
	}
}

// HeaderMatchMethods matches requests whose method is one of methods: an
// exact match on :method for one method, an anchored alternation such as
// ^(GET|POST)$ for several. It returns nil when methods is empty (any method).
func HeaderMatchMethods(methods ...string) *routev3.HeaderMatcher {
	switch len(methods) {
	case 0:
		return nil
	case 1:
		return HeaderMatchExact(MethodHeader, methods[0])
	}
	quoted := make([]string, len(methods))
	for i, m := range methods {
		quoted[i] = regexp.QuoteMeta(m)
	}
	return HeaderMatchRegex(MethodHeader, "^("+strings.Join(quoted, "|")+")$")
}

func headerStringMatch(name string, m *matcherv3.StringMatcher) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{
		Name:                 name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: m},
	}
}
