package policy

import (
	"fmt"
	"strings"
)

// rateLimitSetup is what the routes' rate-limit checks need to know about
// the rateLimits section.
type rateLimitSetup struct {
	tiers     bool // the policy defines tiers
	anonymous bool // the policy defines anonymous limits
	// known is false when Load could not read all tier names or the
	// anonymous limits: then the checks that depend on them are skipped.
	known bool
	// guarded are the headers that may not key limits (credentials).
	guarded guardedHeaders
}

func (c *checker) rateLimitSetup(r *RateLimits, g guardedHeaders) rateLimitSetup {
	s := rateLimitSetup{known: c.tiersKnown() && !c.src.isFailed("rateLimits.anonymous"), guarded: g}
	if r != nil {
		s.tiers, s.anonymous = len(r.Tiers) > 0, len(r.Anonymous) > 0
	}
	return s
}

// routeRateLimit checks the rateLimit of the route at path against the
// rateLimits section.
func (c *checker) routeRateLimit(path string, r Route, s rateLimitSetup) {
	rl := r.RateLimit
	if rl == nil || rl.None {
		return
	}
	rp := fieldPath(path, "rateLimit")
	if c.src.isFailed(rp) {
		return
	}
	authKnown := !c.src.isFailed(fieldPath(path, "auth"))
	public := r.Auth != nil && r.Auth.Public && authKnown
	before := len(c.diags)
	if rl.Consumer != nil && *rl.Consumer {
		c.routeConsumer(fieldPath(rp, "consumer"), public, s)
	}
	if rl.Extra != nil {
		c.limitList(fieldPath(rp, "extra"), "extra", "remove extra", rl.Extra)
	}
	if rl.By != nil {
		c.byKeys(fieldPath(rp, "by"), rl.By, public, s.guarded)
	}
	if len(c.diags) == before && s.known && authKnown && !c.src.isTainted(rp) {
		c.rateLimitEffect(rp, r, s)
	}
}

// routeConsumer checks `consumer: true`: the route needs a consumer, and
// the policy tiers to limit it by.
func (c *checker) routeConsumer(path string, public bool, s rateLimitSetup) {
	switch {
	case public:
		c.errorf(path, "remove consumer; to limit the callers of a public route, add extra limits with `by: [clientIP]`",
			"there is no consumer on a public route (auth: none)")
	case s.known && !s.tiers:
		c.errorf(path, "define the tiers under rateLimits.tiers, or remove consumer",
			"consumer limits need tiers, and the policy defines none")
	}
}

// byKeys checks the keys of a route's extra limits: consumer, clientIP or
// header:<name> of a header that carries no credentials (see
// guardedHeaders), each once (header names compare case-insensitively),
// and no consumer on a public route.
func (c *checker) byKeys(path string, by []string, public bool, g guardedHeaders) {
	if len(by) == 0 {
		c.errorf(path, "list at least one key, or remove by to key by the consumer (the client IP on public routes)", "by is empty")
	}
	seen := make(map[string]string, len(by))
	for i, b := range by {
		bp := indexPath(path, i)
		key, ok := c.byKey(bp, b, g)
		switch {
		case !ok:
		case key == byConsumer && public:
			c.errorf(bp, "use `by: [clientIP]`, or a request header such as `header:x-client-id`",
				"there is no consumer on a public route (auth: none) to key limits by")
		case seen[key] != "":
			c.errorf(bp, "remove the duplicate", "duplicate key %q; first listed at %s", b, c.where(seen[key]))
		default:
			seen[key] = bp
		}
	}
}

// byKey returns the canonical form of a by entry (header names lower
// case), or reports why it is none.
func (c *checker) byKey(path, b string, g guardedHeaders) (string, bool) {
	const fix = "use consumer, clientIP or header:<name>, e.g. header:x-tenant-id"
	lower := strings.ToLower(b)
	switch {
	case b == byConsumer || b == byClientIP:
		return b, true
	case strings.HasPrefix(b, byHeaderPrefix):
		name := strings.TrimPrefix(b, byHeaderPrefix)
		if problem := byHeaderProblem(name); problem != "" {
			c.errorf(path, fix, "invalid key %q: %s", b, problem)
			return "", false
		}
		if !c.rateLimitKeyHeader(path, b, name, g) {
			return "", false
		}
		return byHeaderPrefix + strings.ToLower(name), true
	case strings.HasPrefix(lower, byHeaderPrefix):
		c.errorf(path, fix, "unknown key %q; did you mean %q?", b, byHeaderPrefix+b[len(byHeaderPrefix):])
	default:
		c.unknownByKey(path, b, fix)
	}
	return "", false
}

// unknownByKey reports an unknown by entry, with a did-you-mean, or the
// header: form when it reads as a header name.
func (c *checker) unknownByKey(path, b, fix string) {
	if s, ok := closest(b, []string{byConsumer, byClientIP}); ok {
		c.errorf(path, fix, "unknown key %q; did you mean %q?", b, s)
		return
	}
	if byHeaderProblem(b) == "" && strings.Contains(b, "-") {
		fix = fmt.Sprintf("write %q to key by the request header %s", byHeaderPrefix+strings.ToLower(b), b)
	}
	c.errorf(path, fix, "unknown key %q", b)
}

// byHeaderProblem says what keeps name from keying limits, or "" if
// nothing.
func byHeaderProblem(name string) string {
	switch {
	case name == "":
		return "no header name"
	case strings.HasPrefix(name, ":"):
		return "a pseudo-header is not a request header"
	case strings.ContainsFunc(name, func(r rune) bool { return !isTokenRune(r) }):
		return "not a valid header name"
	}
	return ""
}

// rateLimitEffect warns about a route rateLimit block that does nothing:
// no limit applies to the route, or by keys no extra limit.
func (c *checker) rateLimitEffect(path string, r Route, s rateLimitSetup) {
	rl := r.RateLimit
	public := r.Auth != nil && r.Auth.Public
	consumer := !public && s.tiers && (rl.Consumer == nil || *rl.Consumer)
	anonymous := public && s.anonymous
	switch {
	case !consumer && !anonymous && len(rl.Extra) == 0:
		c.warnf(path, "add extra limits, or write `rateLimit: none`",
			"rateLimit has no effect: no tier, anonymous or extra limit applies to route %q", r.Name)
	case rl.By != nil && len(rl.Extra) == 0:
		c.warnf(fieldPath(path, "by"), "add extra limits to key by it, or remove by: tier limits are per consumer, anonymous ones per client IP",
			"by has no effect without extra limits")
	}
}

// unusedAnonymous warns when anonymous limits are set but no public route
// is rate limited, so they never apply.
func (c *checker) unusedAnonymous(p *Policy) {
	r := p.RateLimits
	if r == nil || len(r.Anonymous) == 0 || c.src.isPartial() {
		return
	}
	for i, route := range p.Routes {
		path := c.routePath(i)
		if c.src.isFailed(path) || c.src.isFailed(fieldPath(path, "auth")) || c.src.isFailed(fieldPath(path, "rateLimit")) {
			return // that route may be a rate-limited public one
		}
		if route.Auth != nil && route.Auth.Public && (route.RateLimit == nil || !route.RateLimit.None) {
			return
		}
	}
	c.warnf("rateLimits.anonymous", "mark a route `auth: none` to limit its callers per client IP, or remove anonymous",
		"anonymous limits are not used: no public route (auth: none) is rate limited")
}
