package policy

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Bounds of the traffic settings.
const (
	maxEndpointWeight = 10000
	maxSplitWeight    = 10000
	maxRetryAttempts  = 10
	maxThreshold      = 100
)

// retryConditions are the accepted values of routes[].retries.on.
var retryConditions = []string{"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx"}

// backendTraffic checks a backend's endpoint metadata, DNS target,
// hashOn, health check, outlier detection and circuit breakers.
func (c *checker) backendTraffic(path string, b Backend) {
	if b.DNS != "" {
		c.dnsTarget(fieldPath(path, "dns"), b)
	}
	for i, m := range b.EndpointMeta {
		ep := indexPath(fieldPath(path, "endpoints"), i)
		if m.Weight > maxEndpointWeight {
			c.errorf(fieldPath(ep, "weight"), fmt.Sprintf("use a weight from 1 to %d", maxEndpointWeight), "weight %d is too large", m.Weight)
		}
		if m.Zone != "" && !validName(m.Zone) {
			c.errorf(fieldPath(ep, "zone"), "use 1-63 lower-case letters, digits and '-', e.g. \"eu-west-1a\"", "invalid zone %q", m.Zone)
		}
	}
	c.hashOn(fieldPath(path, "loadBalancing"), b)
	if b.HealthCheck != nil {
		c.healthCheck(fieldPath(path, "healthCheck"), *b.HealthCheck)
	}
	if b.OutlierDetection != nil {
		c.outlierDetection(fieldPath(path, "outlierDetection"), *b.OutlierDetection)
	}
}

// dnsTarget checks `dns: host:port`, which replaces endpoints.
func (c *checker) dnsTarget(path string, b Backend) {
	if len(b.Endpoints) > 0 {
		c.errorf(path, "keep either `endpoints:` (IP addresses, updated over EDS) or `dns:` (a name Envoy resolves)",
			"backend %q sets both endpoints and dns", b.Name)
		return
	}
	const form = "write host:port, e.g. users.internal:8080"
	host, port, err := net.SplitHostPort(b.DNS)
	switch {
	case err != nil:
		c.errorf(path, form, "dns %q is not host:port", b.DNS)
	case !validPort(port):
		c.errorf(path, form, "dns %q has an invalid port %q (want 1..65535)", b.DNS, port)
	case strings.Contains(host, "*"):
		c.errorf(path, form, "dns %q: a wildcard cannot be resolved", b.DNS)
	case isIP(host):
		c.errorf(path, fmt.Sprintf("write `endpoints: [%q]` for an IP address", b.DNS), "dns %q names an IP address, not a host name", b.DNS)
	case hostProblem(host) != "":
		c.errorf(path, form, "dns %q: invalid host name %q: %s", b.DNS, host, hostProblem(host))
	}
}

// hashOn checks session affinity against the load-balancing policy.
func (c *checker) hashOn(path string, b Backend) {
	consistent := b.LoadBalancing == "ring_hash" || b.LoadBalancing == "maglev"
	h := b.HashOn
	switch {
	case h == nil && consistent:
		c.warnf(path, "add `hashOn: {header: <name>}`, `{cookie: {name: <name>, ttl: 1h}}` or `{clientIP: true}`",
			"%s without hashOn picks endpoints at random", b.LoadBalancing)
		return
	case h == nil:
		return
	case !consistent:
		c.errorf(fieldPath(path, "policy"), "use `policy: ring_hash` or `policy: maglev` with hashOn",
			"hashOn needs a consistent-hash policy, not %q", b.LoadBalancing)
	}
	hp := fieldPath(path, "hashOn")
	if countSet(h.Header != "", h.Cookie != nil, h.ClientIP) != 1 {
		c.errorf(hp, "set exactly one of header, cookie and `clientIP: true`", "hashOn needs exactly one of header, cookie and clientIP")
		return
	}
	switch {
	case h.Header != "":
		c.headerName(fieldPath(hp, "header"), h.Header)
	case h.Cookie != nil:
		c.hashCookie(fieldPath(hp, "cookie"), *h.Cookie)
	}
}

func (c *checker) hashCookie(path string, ck HashCookie) {
	if strings.ContainsFunc(ck.Name, func(r rune) bool { return !isTokenRune(r) }) {
		c.errorf(fieldPath(path, "name"), "use letters, digits and !#$%&'*+-.^_`|~ only", "invalid cookie name %q", ck.Name)
	}
	if d, ok := c.duration(fieldPath(path, "ttl"), ck.TTL); ok && d < 0 {
		c.errorf(fieldPath(path, "ttl"), "use a positive duration such as 1h (0s: a session cookie)", "ttl must not be negative, got %s", ck.TTL)
	}
}

func (c *checker) healthCheck(path string, h HealthCheck) {
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		c.errorf(fieldPath(path, "path"), fmt.Sprintf("write %q", "/"+h.Path), "health check path %q must start with \"/\"", h.Path)
	}
	interval := c.positiveDuration(fieldPath(path, "interval"), h.Interval, DefaultHealthInterval)
	timeout := c.positiveDuration(fieldPath(path, "timeout"), h.Timeout, DefaultHealthTimeout)
	if interval > 0 && timeout > interval {
		c.errorf(fieldPath(path, "timeout"), "use a timeout no longer than the interval",
			"timeout %s is longer than the interval %s", timeout, interval)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"healthyThreshold", h.HealthyThreshold}, {"unhealthyThreshold", h.UnhealthyThreshold}} {
		if f.v > maxThreshold {
			c.errorf(fieldPath(path, f.name), fmt.Sprintf("use 1 to %d", maxThreshold), "%s %d is too large", f.name, f.v)
		}
	}
	for i, s := range h.ExpectedStatuses {
		if s < 100 || s > 599 {
			c.errorf(indexPath(fieldPath(path, "expectedStatuses"), i), "use HTTP status codes from 100 to 599", "invalid status %d", s)
		}
	}
	if h.ExpectedStatuses != nil && len(h.ExpectedStatuses) == 0 {
		c.errorf(fieldPath(path, "expectedStatuses"), "list at least one status, or remove the field for the default [200]", "expectedStatuses is empty")
	}
}

func (c *checker) outlierDetection(path string, o OutlierDetection) {
	c.positiveDuration(fieldPath(path, "interval"), o.Interval, DefaultOutlierInterval)
	c.positiveDuration(fieldPath(path, "baseEjectionTime"), o.BaseEjectionTime, DefaultOutlierBaseEjectionTime)
	if o.MaxEjectionPercent > 100 {
		c.errorf(fieldPath(path, "maxEjectionPercent"), "use 1 to 100", "maxEjectionPercent %d is over 100", o.MaxEjectionPercent)
	}
}

// positiveDuration checks an optional duration that must be > 0 and
// returns it, or def when left out, or 0 when invalid.
func (c *checker) positiveDuration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, ok := c.duration(path, s)
	if ok && d <= 0 {
		c.errorf(path, "use a positive duration such as 500ms or 5s", "%s must be greater than 0, got %s", lastSegment(path), s)
	}
	if !ok || d <= 0 {
		return 0
	}
	return d
}

// routeTraffic checks a route's split, retries, idle timeout and mirror.
// It returns false when the route names no backend at all (the caller
// reports that).
func (c *checker) routeTraffic(path string, r Route, backends nameSet) {
	if r.Backends != nil {
		c.split(path, r, backends)
	}
	if r.Retries != nil {
		c.retries(fieldPath(path, "retries"), r)
	}
	if r.IdleTimeout != "" { // positiveDuration accepts "" without a word
		c.positiveDuration(fieldPath(path, "idleTimeout"), r.IdleTimeout, 0)
	}
	if r.Mirror != nil {
		mp := fieldPath(path, "mirror")
		c.ref(mp, "backend", r.Mirror.Backend, backends, true)
		if r.Mirror.Percent > 100 {
			c.errorf(fieldPath(mp, "percent"), "use 1 to 100", "mirror percent %d is over 100", r.Mirror.Percent)
		}
	}
}

// split checks `backends: [{name, weight}]`, which replaces backend.
func (c *checker) split(path string, r Route, backends nameSet) {
	sp := fieldPath(path, "backends")
	if r.Backend != "" {
		c.errorf(sp, "keep `backend: <name>` for one backend, or `backends: [{name, weight}]` for a split", "route sets both backend and backends")
		return
	}
	if len(r.Backends) == 0 {
		c.errorf(sp, "list at least one `{name, weight}`", "backends is empty")
		return
	}
	seen := map[string]string{}
	total, invalid := 0, false
	for i, wb := range r.Backends {
		ip := indexPath(sp, i)
		if c.backendRef(fieldPath(ip, "name"), wb.Name, backends) {
			if first, dup := seen[wb.Name]; dup {
				c.errorf(fieldPath(ip, "name"), "list each backend once", "backend %q is listed twice; first at %s", wb.Name, c.where(first))
			}
			seen[wb.Name] = ip
		}
		if c.src.isFailed(fieldPath(ip, "weight")) {
			invalid = true // Load reported it
			continue
		}
		if wb.Weight < 0 || wb.Weight > maxSplitWeight {
			c.errorf(fieldPath(ip, "weight"), fmt.Sprintf("use a weight from 0 to %d", maxSplitWeight), "weight %d is out of range", wb.Weight)
			invalid = true
			continue
		}
		total += wb.Weight
	}
	if total == 0 && !invalid {
		c.errorf(sp, "give at least one backend a weight above 0", "the weights of backends add up to 0")
	}
}

func (c *checker) retries(path string, r Route) {
	rt := r.Retries
	if rt.Attempts > maxRetryAttempts {
		c.errorf(fieldPath(path, "attempts"), fmt.Sprintf("use 1 to %d retries", maxRetryAttempts), "attempts %d is too many", rt.Attempts)
	}
	for i, on := range rt.On {
		if !slices.Contains(retryConditions, on) {
			fix := "use " + strings.Join(retryConditions, ", ")
			if s, ok := closest(on, retryConditions); ok {
				fix = fmt.Sprintf("did you mean %q? ", s) + fix
			}
			c.errorf(indexPath(fieldPath(path, "on"), i), fix, "unknown retry condition %q", on)
		}
	}
	if rt.On != nil && len(rt.On) == 0 {
		c.errorf(fieldPath(path, "on"), "list conditions, or remove `on` for the default [5xx, connect-failure, reset]", "on is empty")
	}
	perTry := c.positiveDuration(fieldPath(path, "perTryTimeout"), rt.PerTryTimeout, 0)
	if timeout, ok := c.quietDuration(r.Timeout, DefaultTimeout); ok && perTry > 0 && timeout > 0 && perTry > timeout {
		c.errorf(fieldPath(path, "perTryTimeout"), "use a perTryTimeout shorter than the route's timeout",
			"perTryTimeout %s is longer than the route timeout %s", perTry, timeout)
	}
	if rt.Backoff != nil {
		bp := fieldPath(path, "backoff")
		base := c.positiveDuration(fieldPath(bp, "base"), rt.Backoff.Base, 0)
		mx := c.positiveDuration(fieldPath(bp, "max"), rt.Backoff.Max, 0)
		if base > 0 && mx > 0 && mx < base {
			c.errorf(fieldPath(bp, "max"), "use a max of at least the base", "backoff max %s is below the base %s", mx, base)
		}
	}
}

// quietDuration parses s without reporting (another check does), or
// returns def when s is empty.
func (c *checker) quietDuration(s string, def time.Duration) (time.Duration, bool) {
	if s == "" {
		return def, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// countSet returns how many of conds are true.
func countSet(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// appendRouteTargets appends the backends a route sends requests to:
// backend, the split's backends and the mirror.
func appendRouteTargets(out []string, r Route) []string {
	out = append(out, r.Backend)
	for _, wb := range r.Backends {
		out = append(out, wb.Name)
	}
	if r.Mirror != nil {
		out = append(out, r.Mirror.Backend)
	}
	return out
}

// backendRef checks that name, at path, is a defined backend.
func (c *checker) backendRef(path, name string, known nameSet) bool {
	if name == "" {
		return false
	}
	if c.src.isPartial() || known.set[name] {
		return true
	}
	summary := fmt.Sprintf("backend %q is not defined", name)
	if s, ok := closest(name, known.list); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	c.errorf(path, fmt.Sprintf("define backend %q under `backends:`, or fix the name", name), "%s", summary)
	return false
}
