package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Envoy's own bounds beyond the per-field checks (docs/internals/envoy-bounds.md
// has the audit of every duration and number field). None of these values
// makes Envoy refuse the configuration: Envoy silently reads them as
// something else, which the policy must not let happen.
//
//   - Durations that become Envoy milliseconds (PROTOBUF_GET_MS: timeouts,
//     intervals, back-off): a value below 1ms becomes 0, which Envoy reads
//     as "no timeout" (route timeout, idle timeouts, per-try timeout), as
//     "fire at once" (connect timeout, health-check timer) or as no back-off.
//   - The sticky cookie's TTL becomes its Max-Age in whole seconds: a
//     fraction is cut, and a TTL below 1s becomes a session cookie.
//   - Integers that become uint32 (circuit-breaker thresholds, the outlier
//     detector's consecutive 5xx): a larger value would wrap around (4294967296
//     becomes 0: a circuit breaker back at Envoy's default 1024, an outlier
//     detector that ejects on the first error).
//   - A redirect's port 0 would be ignored (port_redirect 0 means "keep").
//
// and one list bound Envoy's PGV rules do refuse: a route, and a route
// table (a gateway's headers, plus the HSTS header), add at most 1000
// request and 1000 response headers (request/response_headers_to_add).

// maxUint32 is the largest value of Envoy's uint32 fields.
const maxUint32 = math.MaxUint32

// maxHeadersToAdd is Envoy's limit on request_headers_to_add and
// response_headers_to_add of a route and of a route table.
const maxHeadersToAdd = 1000

// envoyBounds runs the checks above on the whole policy.
func (c *checker) envoyBounds(p *Policy) {
	for i, b := range p.Backends {
		c.backendBounds(indexPath("backends", i), b)
	}
	for i, r := range p.Routes {
		c.routeBounds(c.routePath(i), r)
	}
	for i, r := range p.Routes {
		if r.Headers != nil { // headersToAdd has nothing to say about none
			c.headersToAdd(fieldPath(c.routePath(i), "headers"), r.Headers, 0)
		}
	}
	for i, g := range p.Gateways {
		hsts := 0
		if g.HSTS != nil {
			hsts = 1 // translator/tls.go adds Strict-Transport-Security
		}
		c.headersToAdd(fieldPath(indexPath("gateways", i), "headers"), g.Headers, hsts)
		if e := g.Edge; e != nil {
			ep := fieldPath(indexPath("gateways", i), "edge")
			c.envoyMillis(ep, "requestHeadersTimeout", e.RequestHeadersTimeout, "no timeout")
			c.envoyMillis(ep, "streamIdleTimeout", e.StreamIdleTimeout, "no timeout")
			c.envoyMillis(ep, "idleTimeout", e.IdleTimeout, "no timeout")
		}
	}
}

func (c *checker) backendBounds(path string, b Backend) {
	c.envoyMillis(path, "connectTimeout", b.ConnectTimeout, "fail every connection at once")
	if h := b.HashOn; h != nil && h.Cookie != nil {
		c.wholeSeconds(fieldPath(fieldPath(fieldPath(fieldPath(path, "loadBalancing"), "hashOn"), "cookie"), "ttl"), h.Cookie.TTL)
	}
	if h := b.HealthCheck; h != nil {
		hp := fieldPath(path, "healthCheck")
		c.envoyMillis(hp, "interval", h.Interval, "check without pause")
		c.envoyMillis(hp, "timeout", h.Timeout, "time out every check")
	}
	if o := b.OutlierDetection; o != nil {
		op := fieldPath(path, "outlierDetection")
		c.envoyMillis(op, "interval", o.Interval, "sweep without pause")
		c.envoyMillis(op, "baseEjectionTime", o.BaseEjectionTime, "no ejection")
		c.envoyUint32(fieldPath(op, "consecutive5xx"), o.Consecutive5xx)
	}
	if cb := b.CircuitBreakers; cb != nil {
		cp := fieldPath(path, "circuitBreakers")
		c.envoyUint32(fieldPath(cp, "maxConnections"), cb.MaxConnections)
		c.envoyUint32(fieldPath(cp, "maxPendingRequests"), cb.MaxPendingRequests)
		c.envoyUint32(fieldPath(cp, "maxRequests"), cb.MaxRequests)
		c.envoyUint32(fieldPath(cp, "maxRetries"), cb.MaxRetries)
	}
}

func (c *checker) routeBounds(path string, r Route) {
	c.envoyMillis(path, "timeout", r.Timeout, "no timeout")
	c.envoyMillis(path, "idleTimeout", r.IdleTimeout, "no timeout")
	if rt := r.Retries; rt != nil {
		rp := fieldPath(path, "retries")
		c.envoyMillis(rp, "perTryTimeout", rt.PerTryTimeout, "no per-try timeout")
		if b := rt.Backoff; b != nil {
			bp := fieldPath(rp, "backoff")
			c.envoyMillis(bp, "base", b.Base, "retry without back-off")
			c.envoyMillis(bp, "max", b.Max, "retry without back-off")
		}
	}
	if rd := r.Redirect; rd != nil && rd.Port == 0 {
		pp := fieldPath(fieldPath(path, "redirect"), "port")
		if c.src != nil && c.src.firstRange(pp).Line != 0 { // written, not left out
			c.errorf(pp, "use a port from 1 to 65535, or remove `port` to keep the request's", "port 0 is out of range")
		}
	}
}

// headersToAdd refuses more than maxHeadersToAdd added or set headers in
// one direction (extraResponse more are added to the responses).
func (c *checker) headersToAdd(path string, h *HeaderRules, extraResponse int) {
	if h == nil {
		return
	}
	for _, d := range []struct {
		name  string
		m     *HeaderMutations
		extra int
	}{{"request", h.Request, 0}, {"response", h.Response, extraResponse}} {
		if d.m == nil {
			continue
		}
		limit := maxHeadersToAdd - d.extra
		if n := len(d.m.Add) + len(d.m.Set); n > limit {
			c.errorf(fieldPath(path, d.name), fmt.Sprintf("add and set at most %d headers together (Envoy's limit is %d%s)",
				limit, maxHeadersToAdd, map[bool]string{true: ", HSTS takes one", false: ""}[d.extra > 0]),
				"%d %s headers are added or set", n, d.name)
		}
	}
}

// envoyMillis refuses a duration above 0 and below 1ms at parent.field:
// Envoy counts the field in whole milliseconds and would read it as 0, meaning zero. Other
// problems (syntax, sign, the upper bound) are the field's own check's.
func (c *checker) envoyMillis(parent, field, s, zero string) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d >= time.Millisecond {
		return
	}
	c.errorf(fieldPath(parent, field), "use at least 1ms (Envoy counts this duration in whole milliseconds)",
		"%s %s is below 1ms: Envoy would read it as 0 (%s)", field, s, zero)
}

// wholeSeconds refuses a duration that is not a whole number of seconds
// (the field's own check refuses a negative one).
func (c *checker) wholeSeconds(path, s string) {
	d, err := time.ParseDuration(s)
	if s == "" || err != nil || d <= 0 || d%time.Second == 0 {
		return
	}
	c.errorf(path, fmt.Sprintf("use whole seconds, e.g. %s (0s: a session cookie)", (d/time.Second+1)*time.Second),
		"ttl %s is not a whole number of seconds: Envoy sets the cookie's Max-Age in seconds", s)
}

// envoyUint32 refuses an integer above Envoy's uint32 range (the field's
// own check refuses the low end).
func (c *checker) envoyUint32(path string, v int) {
	if v > maxUint32 {
		c.errorf(path, fmt.Sprintf("use at most %d (Envoy's field is a 32-bit unsigned integer)", uint64(maxUint32)),
			"%s %d is too large: Envoy would read it as %d", lastSegment(path), v, uint32(v))
	}
}

// wellFormedDuration reports whether s has time.ParseDuration's syntax
// (a sign, then numbers each followed by a unit), whatever its size: a
// well-formed duration ParseDuration refuses is out of range, not a typo.
func wellFormedDuration(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "0" || s == "" {
		return s == "0"
	}
	units := []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"} // two-letter units first
	for s != "" {
		n := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if n <= 0 || strings.Trim(s[:n], ".") == "" || strings.Count(s[:n], ".") > 1 {
			return false
		}
		s = s[n:]
		i := slices.IndexFunc(units, func(u string) bool { return strings.HasPrefix(s, u) })
		if i < 0 {
			return false
		}
		s = s[len(units[i]):]
	}
	return true
}
