package envoy

import (
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// SafeRegex returns an RE2 matcher for regex. Envoy matches the whole input
// (the expression is implicitly anchored) and rejects expressions whose
// compiled program exceeds the runtime key re2.max_program_size.error_level
// (100 by default; Bootstrap raises it, see RuntimeLayers).
func SafeRegex(regex string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: regex}
}

// RegexRewrite returns a path rewrite that replaces the matches of the RE2
// expression pattern with substitution (\1-style group references allowed).
func RegexRewrite(pattern, substitution string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{
		Pattern:      SafeRegex(pattern),
		Substitution: substitution,
	}
}
