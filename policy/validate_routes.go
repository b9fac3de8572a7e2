package policy

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/parallel"
)

// maxRegexInstructions bounds a regex's compiled program (regexp/syntax,
// simplified): Envoy's RE2 rejects programs over its size limit, so a regex
// that is too big must fail here, not at xDS push time.
const maxRegexInstructions = 1000

const hostRule = `use a lower-case DNS name without port, optionally starting with "*.", e.g. api.example.com or *.example.com`

// nameSet is the names of one kind of policy object, for reference checks.
type nameSet struct {
	list []string // distinct, in policy order
	set  map[string]bool
}

func newNameSet[T any](items []T, name func(T) string) nameSet {
	ns := nameSet{set: make(map[string]bool, len(items))}
	for _, it := range items {
		n := name(it)
		if n != "" && !ns.set[n] {
			ns.set[n] = true
			ns.list = append(ns.list, n)
		}
	}
	return ns
}

// checkRoutesMin is the route count from which the routes' own checks
// run on several goroutines (routeChecks).
const checkRoutesMin = 512

func (c *checker) routes(p *Policy) {
	gateways := newNameSet(p.Gateways, func(g Gateway) string { return g.Name })
	checks := c.routeChecks(p, gateways)
	seen := make(map[string]string, len(p.Routes))
	firstMatch := make(map[gatewayMatch]int, len(p.Routes))
	for i, r := range p.Routes {
		rc := checks[i]
		if rc.skip {
			continue // not a route at all; Load said why
		}
		c.name(fieldPath(c.routePath(i), "name"), "route", r.Name, seen)
		c.diags = append(c.diags, rc.diags...)
		if rc.gwOK && rc.matchOK {
			c.duplicateMatch(p.Routes, i, rc.matchKey, gateways.list, firstMatch)
		}
	}
}

// routeCheck is what checking one route on its own found.
type routeCheck struct {
	skip     bool // the route failed to load as a whole
	diags    Diagnostics
	gwOK     bool   // its gateway reference is usable
	matchOK  bool   // its match is sound enough to compare with others
	matchKey string // matchKey of its match, when both are
}

// routeChecks checks each route on its own (everything but the name and
// duplicate-match checks, which compare routes), on several goroutines
// for many routes: each route reports into a checker of its own, which
// only reads the shared state (the source, the name sets), and the caller
// merges the reports in route order, so the diagnostics are those of a
// sequential run, in the same order.
func (c *checker) routeChecks(p *Policy, gateways nameSet) []routeCheck {
	env := routeEnv{
		gateways: gateways,
		backends: newNameSet(p.Backends, func(b Backend) string { return b.Name }),
		methods:  c.authMethods(p.Auth),
		guarded:  newGuardedHeaders(p.Auth),
	}
	env.limits = c.rateLimitSetup(p.RateLimits, env.guarded)
	return parallel.Map(len(p.Routes), c.spread(len(p.Routes), checkRoutesMin), func(i int) routeCheck {
		return c.routeOwn(c.routePath(i), p.Routes[i], &env)
	})
}

// routeEnv is what the checks of one route read about the whole policy.
type routeEnv struct {
	gateways, backends nameSet
	methods            authMethods
	guarded            guardedHeaders
	limits             rateLimitSetup
}

// routeOwn runs the checks of the route r at path that need no other
// route, reporting into a checker of its own.
func (c *checker) routeOwn(path string, r Route, env *routeEnv) routeCheck {
	if c.src.isFailed(path) {
		return routeCheck{skip: true}
	}
	rc := &checker{src: c.src}
	out := routeCheck{gwOK: rc.ref(path, "gateway", r.Gateway, env.gateways, false)}
	rc.ref(path, "backend", r.Backend, env.backends, r.Backends == nil && r.DirectResponse == nil && r.Redirect == nil)
	rc.routeTraffic(path, r, env.backends)
	out.matchOK = rc.match(fieldPath(path, "match"), r.Match, env.guarded)
	if r.Rewrite != nil {
		rc.rewrite(fieldPath(path, "rewrite"), r)
	}
	if r.Timeout != "" {
		rc.timeout(fieldPath(path, "timeout"), r.Timeout)
	}
	rc.routeAuth(path, r, env.methods)
	rc.routeRateLimit(path, r, env.limits)
	rc.routeAccessLog(path, r.AccessLog)
	rc.routeTransform(path, r.Transform)
	if out.gwOK && out.matchOK {
		out.matchKey = matchKey(r.Match)
	}
	out.diags = rc.diags
	return out
}

// ref checks that the route at path refers, in its field kind, to a defined
// gateway or backend. It returns whether the reference is usable (an unset
// optional one is).
func (c *checker) ref(route, kind, name string, known nameSet, required bool) bool {
	if name == "" {
		if required {
			fix := fmt.Sprintf("add `%s: <name>`", kind)
			if kind == "backend" {
				fix += ", or answer without one with `directResponse` or `redirect`"
			}
			c.errorf(fieldPath(route, kind), fix, "route has no %s", kind)
		}
		return !required
	}
	if c.src.isPartial() || known.set[name] {
		return true
	}
	summary := fmt.Sprintf("%s %q is not defined", kind, name)
	if s, ok := closest(name, known.list); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	c.errorf(fieldPath(route, kind), fmt.Sprintf("define %s %q under `%ss:`, or fix the name", kind, name, kind), "%s", summary)
	return false
}

// match checks a route's match and reports whether it is sound enough to
// compare with other routes' matches. It refuses header conditions on the
// guarded headers (identity, credentials): see guardedHeaders.
func (c *checker) match(path string, m Match, g guardedHeaders) bool {
	before := len(c.diags)
	if len(m.Hosts) > 0 {
		c.hosts(fieldPath(path, "hosts"), m.Hosts)
	}
	c.pathCondition(path, m)
	if len(m.Methods) > 0 {
		c.methods(fieldPath(path, "methods"), m.Methods)
	}
	if len(m.Headers) > 0 {
		c.headers(fieldPath(path, "headers"), m.Headers, g)
	}
	return len(c.diags) == before && !c.src.isTainted(path)
}

func (c *checker) hosts(path string, hosts []string) {
	seen := make(map[string]string, len(hosts))
	for i, h := range hosts {
		hp := indexPath(path, i)
		if problem := hostProblem(h); problem != "" {
			c.errorf(hp, hostRule, "invalid host %q: %s", h, problem)
			continue
		}
		if first, dup := seen[h]; dup {
			c.errorf(hp, "remove the duplicate", "duplicate host %q; first listed at %s", h, c.where(first))
			continue
		}
		seen[h] = hp
	}
}

// hostProblem says what is wrong with a match host, or "" if nothing.
func hostProblem(h string) string {
	switch {
	case h == "":
		return "empty host"
	case h == "*":
		return `a bare "*" is not allowed; leave out hosts to match any host`
	case strings.Contains(h, ":"):
		return "a host must not include a port"
	case h != strings.ToLower(h):
		return "a host must be lower case"
	case h == "any":
		return `"any" is the name of the catch-all virtual host; use a fully qualified name`
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return `only a leading "*." wildcard is allowed`
	}
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return fmt.Sprintf("label %q is not a DNS label (1-63 letters, digits and '-', not starting or ending with '-')", label)
		}
	}
	return ""
}

func validLabel(s string) bool {
	return len(s) > 0 && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-' &&
		!strings.ContainsFunc(s, func(r rune) bool { return r > 127 || !isNameByte(byte(r)) })
}

// pathCondition checks path, pathPrefix and pathRegex: at most one, and
// each well formed.
func (c *checker) pathCondition(path string, m Match) {
	var set []string
	for _, f := range []struct{ name, value string }{
		{"path", m.Path}, {"pathPrefix", m.PathPrefix}, {"pathRegex", m.PathRegex},
	} {
		if f.value != "" {
			set = append(set, f.name)
		}
	}
	if len(set) > 1 {
		c.errorf(path, "keep exactly one of them", "more than one path condition: %s", strings.Join(set, ", "))
	}
	c.slashPath(path, "path", m.Path)
	c.slashPath(path, "pathPrefix", m.PathPrefix)
	if m.PathRegex != "" {
		c.regex(fieldPath(path, "pathRegex"), m.PathRegex, "it must match the whole path")
	}
}

// slashPath checks that the field of match, if set, starts with "/" and
// is text a request path can hold.
func (c *checker) slashPath(match, field, value string) {
	if value == "" {
		return // unset; matchText has nothing to say about ""
	}
	if !strings.HasPrefix(value, "/") {
		c.errorf(fieldPath(match, field), fmt.Sprintf("write %q", "/"+value), "%s %q must start with \"/\"", field, value)
	}
	if fix, summary := matchTextProblem(value); summary != "" {
		c.errorf(fieldPath(match, field), fix, "%s", summary)
	}
}

// matchText checks a path or header value a request is matched against:
// at most maxHeaderValue bytes (Envoy refuses longer request headers, so it
// could never match), no control characters (no request carries them) and
// no bidirectional-text controls (they make a policy read differently from
// what it matches).
func (c *checker) matchText(path, v string) {
	if fix, summary := matchTextProblem(v); summary != "" {
		c.errorf(path, fix, "%s", summary)
	}
}

// matchTextProblem returns matchText's fix and summary for v, or "" and
// "" when v is fine.
func matchTextProblem(v string) (fix, summary string) {
	if len(v) <= maxHeaderValue && printableASCII(v) {
		return "", "" // no control or bidirectional-text character: the common case, without decoding runes
	}
	switch {
	case len(v) > maxHeaderValue:
		return fmt.Sprintf("shorten it to at most %d bytes", maxHeaderValue), fmt.Sprintf("value is %d bytes long; no request can match it", len(v))
	case strings.ContainsFunc(v, isControl):
		return "remove the control characters (a NUL, a line break, a tab...)", fmt.Sprintf("value %q contains a control character", v)
	case strings.ContainsFunc(v, isBidiControl):
		return "remove the bidirectional-text control characters (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)",
			fmt.Sprintf("value %q contains a bidirectional-text control character", v)
	}
	return "", ""
}

// printableASCII reports whether every byte of v is from space to "~".
func printableASCII(v string) bool {
	for i := range len(v) {
		if v[i] < 0x20 || v[i] >= 0x7f {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// regex checks that re is valid RE2 and small enough for Envoy; note says
// what it must match, for the fix.
func (c *checker) regex(path, re, note string) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		c.errorf(path, "write valid RE2 syntax (github.com/google/re2/wiki/Syntax); "+note, "invalid regex %q: %s", re, regexProblem(err))
		return
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		c.errorf(path, "simplify the regex", "invalid regex %q: %s", re, regexProblem(err))
		return
	}
	if n := len(prog.Inst); n > maxRegexInstructions {
		c.errorf(path, "simplify the regex, e.g. use smaller repetition counts",
			"regex %q is too complex: %d instructions, Envoy's limit is %d", re, n, maxRegexInstructions)
	}
}

// regexProblem is the reason part of a regexp/syntax error and the part of
// the regex it is about.
func regexProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: `%s`", se.Code, se.Expr)
	}
	return err.Error()
}

func (c *checker) methods(path string, methods []string) {
	const fix = "use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE or CONNECT"
	known := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
	seen := make(map[string]string, len(methods))
	for i, m := range methods {
		mp := indexPath(path, i)
		up := strings.ToUpper(m)
		if !slices.Contains(known, up) {
			summary := fmt.Sprintf("unknown HTTP method %q", m)
			if s, ok := closest(up, known); ok {
				summary += fmt.Sprintf("; did you mean %q?", s)
			}
			c.errorf(mp, fix, "%s", summary)
			continue
		}
		if first, dup := seen[up]; dup {
			c.errorf(mp, "remove the duplicate", "duplicate method %q; first listed at %s", m, c.where(first))
			continue
		}
		seen[up] = mp
	}
}

func (c *checker) headers(path string, headers []HeaderMatch, g guardedHeaders) {
	for i, h := range headers {
		hp := indexPath(path, i)
		if c.headerName(fieldPath(hp, "name"), h.Name) {
			c.matchHeader(fieldPath(hp, "name"), h.Name, g)
		}
		set := 0
		for _, on := range []bool{h.Exact != "", h.Prefix != "", h.Regex != "", h.Present} {
			if on {
				set++
			}
		}
		if set != 1 && !c.src.isTainted(hp) {
			c.errorf(hp, "set exactly one of them", "header condition needs exactly one of exact, prefix, regex or present: true; %d set", set)
		}
		if h.Regex != "" {
			c.regex(fieldPath(hp, "regex"), h.Regex, "it must match the whole header value")
		}
		c.matchText(fieldPath(hp, "exact"), h.Exact)
		c.matchText(fieldPath(hp, "prefix"), h.Prefix)
	}
}

// headerName checks the name of a header condition and reports whether it
// is a valid one.
func (c *checker) headerName(path, name string) bool {
	switch {
	case name == "":
		c.errorf(path, "add `name: <header name>`", "header name is required")
	case strings.HasPrefix(name, ":"):
		c.errorf(path, "use match.methods for :method, match.hosts for :authority, and path, pathPrefix or pathRegex for :path",
			"pseudo-header %q cannot be matched as a header", name)
	case strings.ContainsFunc(name, func(r rune) bool { return !isTokenRune(r) }):
		c.errorf(path, "use letters, digits and !#$%&'*+-.^_`|~ only", "invalid header name %q", name)
	default:
		return true
	}
	return false
}

// isTokenRune reports whether r may appear in an HTTP header name (an
// RFC 9110 token character).
func isTokenRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func (c *checker) rewrite(path string, r Route) {
	pp := fieldPath(path, "pathPrefix")
	if r.Match.PathRegex != "" && r.Rewrite.PathPrefix != "" {
		c.errorf(pp, "use a path or pathPrefix match, or rewrite.pathRegex",
			"rewrite.pathPrefix cannot be used with match.pathRegex")
	}
	if v := r.Rewrite.PathPrefix; v != "" && !strings.HasPrefix(v, "/") {
		c.errorf(pp, fmt.Sprintf("write %q", "/"+v), "rewrite.pathPrefix %q must start with \"/\"", v)
	}
	if v := r.Rewrite.PathPrefix; v != "" {
		c.matchText(pp, v)
	}
	c.httpRewrite(path, r)
}

func (c *checker) timeout(path, s string) {
	if d, ok := c.duration(path, s); ok && d < 0 {
		c.errorf(path, `use a positive duration, or "0s" to disable the timeout`, "timeout must not be negative, got %s", s)
	}
}

// gatewayMatch identifies a match condition on one gateway.
type gatewayMatch struct {
	gateway string
	match   string // matchKey
}

// duplicateMatch reports route i, whose match has the matchKey key, if an
// earlier route has the very same match on one of the gateways it shares
// with it. first maps gateway+match
// keys to the earliest route index; lookups are O(1), so the whole check is
// linear in routes × gateways.
func (c *checker) duplicateMatch(routes []Route, i int, key string, allGateways []string, first map[gatewayMatch]int) {
	r := routes[i]
	targets := allGateways
	if r.Gateway != "" {
		targets = []string{r.Gateway}
	}
	for _, gw := range targets {
		k := gatewayMatch{gateway: gw, match: key}
		j, dup := first[k]
		if !dup {
			first[k] = i
			continue
		}
		if j != i {
			c.errorf(fieldPath(indexPath("routes", i), "match"),
				"make the matches differ (hosts, path, methods or headers), or remove one of the routes",
				"route %q has the same match as route %q at %s on gateway %q: one of them is never reached",
				r.Name, routes[j].Name, c.where(indexPath("routes", j)), gw)
			return
		}
	}
}

// matchKey is a canonical, unambiguous encoding of a match: two matches
// have equal keys exactly when Envoy would treat them as the same condition.
func matchKey(m Match) string {
	cm := compileMatch(m)
	var buf [128]byte
	hosts := m.Hosts
	if len(hosts) > 1 {
		hosts = slices.Sorted(slices.Values(hosts))
	}
	b := appendKeyField(buf[:0], strings.Join(hosts, ","))
	b = appendKeyField(b, cm.Path)
	b = appendKeyField(b, cm.PathPrefix)
	b = appendKeyField(b, cm.PathRegex)
	b = appendKeyField(b, strings.Join(cm.Methods, ","))
	for _, h := range cm.Headers {
		b = appendKeyField(b, h.Name)
		b = appendKeyField(b, h.Exact)
		b = appendKeyField(b, h.Prefix)
		b = appendKeyField(b, h.Regex)
		b = appendKeyField(b, strconv.FormatBool(h.Present))
	}
	return string(b)
}

// appendKeyField appends s to a matchKey, prefixed by its length.
func appendKeyField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
