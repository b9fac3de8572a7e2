package policy

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// cors checks a CORS policy. methods are the route's match methods: a
// route limited to methods must accept OPTIONS for preflights to reach it.
func (c *checker) cors(path string, p CORS, methods []string) {
	if p.Disabled {
		return
	}
	if len(p.AllowOrigins) == 0 && len(p.AllowOriginRegexes) == 0 {
		c.errorf(path, "add `allowOrigins: [https://app.example.com]` or allowOriginRegexes", "CORS policy allows no origin")
	}
	for i, o := range p.AllowOrigins {
		op := indexPath(fieldPath(path, "allowOrigins"), i)
		if o == "*" {
			if p.AllowCredentials {
				c.errorf(op, "list the origins that may send credentials; browsers refuse \"*\" with credentials",
					`allowOrigins "*" cannot be used with allowCredentials: true`)
			}
			continue
		}
		if problem := originProblem(o); problem != "" {
			c.errorf(op, `write scheme://host[:port] without a path, e.g. "https://app.example.com", or "*"`, "invalid origin %q: %s", o, problem)
		}
	}
	for i, re := range p.AllowOriginRegexes {
		c.regex(indexPath(fieldPath(path, "allowOriginRegexes"), i), re, "it must match the whole origin, e.g. https://[a-z]+\\.example\\.com")
	}
	for i, m := range p.AllowMethods {
		if m == "" || strings.ContainsFunc(m, func(r rune) bool { return !isTokenRune(r) }) || m != strings.ToUpper(m) {
			c.errorf(indexPath(fieldPath(path, "allowMethods"), i), "use upper-case method names, e.g. GET, POST", "invalid method %q", m)
		}
	}
	c.corsHeaderNames(fieldPath(path, "allowHeaders"), p.AllowHeaders)
	c.corsHeaderNames(fieldPath(path, "exposeHeaders"), p.ExposeHeaders)
	if p.MaxAge != "" {
		if d, ok := c.duration(fieldPath(path, "maxAge"), p.MaxAge); ok && (d < time.Second || d%time.Second != 0) {
			c.errorf(fieldPath(path, "maxAge"), `use whole seconds of at least 1s, e.g. "10m"`, "maxAge %s is not a whole number of seconds ≥ 1s", p.MaxAge)
		}
	}
	if len(methods) > 0 && !slices.ContainsFunc(methods, func(m string) bool { return strings.EqualFold(m, "OPTIONS") }) {
		c.warnf(path, "add OPTIONS to match.methods, or remove match.methods",
			"the route's match.methods has no OPTIONS, so CORS preflight requests do not match it and get 404")
	}
}

func (c *checker) corsHeaderNames(path string, names []string) {
	for i, n := range names {
		if n == "" || (n != "*" && strings.ContainsFunc(n, func(r rune) bool { return !isTokenRune(r) })) {
			c.errorf(indexPath(path, i), "use letters, digits and !#$%&'*+-.^_`|~ only", "invalid header name %q", n)
		}
	}
}

// originProblem says what is wrong with an origin, or "" if nothing.
func originProblem(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "the scheme must be http or https"
	case u.Host == "":
		return "no host"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "an origin has no path, query, fragment or user"
	case o != strings.ToLower(o):
		return "browsers send origins in lower case"
	}
	return ""
}
