package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/parallel"
)

// nameRule is the fix shown for an invalid name.
const nameRule = "use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit " +
	"(no dots, no underscores: names become Envoy resource names and stat names)"

// Validate checks the meaning of the policy and returns every problem at
// once: errors make the policy unusable, warnings do not. Paths and
// positions refer to the merged policy as Load read it. Fields that Load
// already reported as broken are not reported again, and when Load could
// not read every name, checks that need all names (references, unused
// backends, "no gateways") are skipped; so are the checks of the routes'
// auth methods when Load could not read which methods the policy
// configures, and the checks that need every tier name when Load could
// not read them all.
//
// The checks of each route on its own run on GOMAXPROCS goroutines for a
// policy of many routes; the diagnostics and their order are the same.
func (p *Policy) Validate() Diagnostics {
	return p.validate(parallel.Workers)
}

// validate is Validate spreading n items over workers(n, minItems)
// goroutines (tests force the parallel path with it).
func (p *Policy) validate(workers func(n, minItems int) int) Diagnostics {
	c := &checker{src: p.src, spread: workers, routePaths: indexPaths("routes", len(p.Routes))}
	c.version(p.Version)
	c.gateways(p.Gateways)
	c.backends(p.Backends)
	c.auth(p.Auth)
	c.rateLimits(p.RateLimits)
	c.observability(p.Observability)
	c.routeStatsDefault(p)
	c.tls(p)
	c.routes(p)
	c.quotaRoutes(p) // validate_ratelimit_mode.go
	c.httpFeatures(p)
	c.unusedBackends(p)
	c.unusedAnonymous(p)
	c.envoyBounds(p) // validate_bounds.go
	return c.diags
}

// checker accumulates Validate's diagnostics.
type checker struct {
	src   *source
	diags Diagnostics
	// spread says how many goroutines check n items (parallel.Workers).
	spread func(n, minItems int) int
	// routePaths are the routes' paths, routes[i], built once for the
	// several passes over the routes (routePath).
	routePaths []string
}

// routePath returns the path of route i, routes[i].
func (c *checker) routePath(i int) string {
	if i < len(c.routePaths) {
		return c.routePaths[i]
	}
	return indexPath("routes", i)
}

func (c *checker) errorf(path, fix, format string, args ...any) {
	c.report(SeverityError, path, fix, fmt.Sprintf(format, args...))
}

func (c *checker) warnf(path, fix, format string, args ...any) {
	c.report(SeverityWarning, path, fix, fmt.Sprintf(format, args...))
}

func (c *checker) report(sev Severity, path, fix, summary string) {
	if c.src.isFailed(path) {
		return
	}
	c.diags = append(c.diags, Diagnostic{
		Severity: sev, Summary: summary, Detail: fix, Path: path, Range: c.src.rangeOf(path),
	})
}

// where describes path for "first defined at" messages: the path, plus the
// position when known.
func (c *checker) where(path string) string {
	r := c.src.rangeOf(path)
	if r.Line == 0 {
		return path
	}
	return fmt.Sprintf("%s (%s)", path, r)
}

func (c *checker) version(v int) {
	fix := fmt.Sprintf("set `version: %d`", KnownVersion)
	switch {
	case v == KnownVersion:
	case v == 0 && !c.src.isPartial():
		c.errorf("version", fix, "missing version")
	case v != 0:
		c.errorf("version", fix, "unsupported version %d", v)
	}
}

// name checks that a gateway, listener, route or backend name is present,
// well formed and not taken; seen maps names to the path that first used
// them.
func (c *checker) name(path, kind, name string, seen map[string]string) {
	switch {
	case name == "":
		c.errorf(path, "add a name; "+nameRule, "%s name is required", kind)
	case !validName(name):
		c.errorf(path, nameRule+nameExample(name), "invalid %s name %q", kind, name)
	}
	if first, ok := seen[name]; ok && name != "" {
		c.errorf(path, fmt.Sprintf("rename one of the two %ss", kind),
			"duplicate %s name %q; first defined at %s", kind, name, c.where(first))
		return
	}
	seen[name] = path
}

func (c *checker) gateways(gws []Gateway) {
	if len(gws) == 0 && !c.src.isPartial() {
		c.errorf("gateways", "add a gateway with at least one listener under `gateways:`", "no gateways defined")
	}
	seen := make(map[string]string, len(gws))
	for i, g := range gws {
		path := indexPath("gateways", i)
		c.name(fieldPath(path, "name"), "gateway", g.Name, seen)
		c.listeners(fieldPath(path, "listeners"), g)
		if g.Auth != nil {
			c.gatewayAuth(fieldPath(path, "auth"), *g.Auth)
		}
	}
}

// boundListener is a listener's parsed address, for the overlap check.
type boundListener struct {
	path string
	name string
	addr netip.Addr
}

func (c *checker) listeners(path string, g Gateway) {
	if len(g.Listeners) == 0 {
		c.errorf(path, "add a listener, e.g. `{name: http, port: 8080}`", "gateway %q has no listeners", g.Name)
	}
	seen := make(map[string]string, len(g.Listeners))
	byPort := make(map[int][]boundListener)
	for i, ln := range g.Listeners {
		lp := indexPath(path, i)
		c.name(fieldPath(lp, "name"), "listener", ln.Name, seen)
		portOK := c.port(fieldPath(lp, "port"), ln.Port)
		addr, addrOK := c.address(fieldPath(lp, "address"), ln.Address)
		if portOK && addrOK {
			b := boundListener{path: lp, name: ln.Name, addr: addr}
			c.overlap(fieldPath(lp, "port"), b, ln.Port, byPort[ln.Port])
			byPort[ln.Port] = append(byPort[ln.Port], b)
		}
	}
}

func (c *checker) port(path string, port int) bool {
	if port < 1 || port > 65535 {
		c.errorf(path, "use a port from 1 to 65535", "port %d is out of range", port)
		return false
	}
	return true
}

func (c *checker) address(path, s string) (netip.Addr, bool) {
	if s == "" {
		s = DefaultAddress
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		c.errorf(path, "use an IPv4 or IPv6 address without zone, e.g. 0.0.0.0 or ::", "address %q is not an IP address", s)
		return netip.Addr{}, false
	}
	return addr, true
}

// overlap reports b if it binds an address:port that one of the earlier
// listeners on the same port already covers.
func (c *checker) overlap(path string, b boundListener, port int, earlier []boundListener) {
	for _, e := range earlier {
		if !addrsOverlap(e.addr, b.addr) {
			continue
		}
		c.errorf(path, "use another port, or distinct specific addresses",
			"listener %q (%s) overlaps listener %q (%s) defined at %s",
			b.name, hostPort(b.addr, port), e.name, hostPort(e.addr, port), c.where(e.path))
		return
	}
}

// addrsOverlap reports whether binding a and b on one port conflicts: they
// are equal, or one is the wildcard of the other's family.
func addrsOverlap(a, b netip.Addr) bool {
	if a.Is4() != b.Is4() {
		return false
	}
	return a == b || a.IsUnspecified() || b.IsUnspecified()
}

func hostPort(a netip.Addr, port int) string {
	return netip.AddrPortFrom(a, uint16(port)).String()
}

func (c *checker) backends(bs []Backend) {
	seen := make(map[string]string, len(bs))
	for i, b := range bs {
		path := indexPath("backends", i)
		c.name(fieldPath(path, "name"), "backend", b.Name, seen)
		c.endpoints(fieldPath(path, "endpoints"), b)
		c.loadBalancing(fieldPath(path, "loadBalancing"), b.LoadBalancing)
		c.backendTraffic(path, b)
		if d, ok := c.duration(fieldPath(path, "connectTimeout"), b.ConnectTimeout); ok && d <= 0 {
			c.errorf(fieldPath(path, "connectTimeout"), "use a positive duration such as 1s",
				"connectTimeout must be greater than 0, got %s", b.ConnectTimeout)
		}
	}
}

func (c *checker) endpoints(path string, b Backend) {
	if b.DNS != "" {
		return // validate_traffic.go
	}
	if len(b.Endpoints) == 0 {
		c.errorf(path, "add at least one endpoint, e.g. `endpoints: [\"10.0.0.1:8080\"]`, or `dns: host:port`", "backend %q has no endpoints", b.Name)
	}
	seen := make(map[netip.AddrPort]string, len(b.Endpoints))
	for i, ep := range b.Endpoints {
		ip := indexPath(path, i)
		if ep == "" {
			continue // Load reported it
		}
		ap, ok := c.endpoint(ip, ep)
		if !ok {
			continue
		}
		if first, dup := seen[ap]; dup {
			c.errorf(ip, "remove the duplicate", "duplicate endpoint %q; first listed at %s", ep, c.where(first))
			continue
		}
		seen[ap] = ip
	}
}

// endpoint parses "ip:port" or "[ipv6]:port" and explains what is wrong
// with anything else.
func (c *checker) endpoint(path, s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 && ap.Addr().Zone() == "" {
		return ap, true
	}
	const form = "write ip:port, e.g. 10.0.0.1:8080 or [2001:db8::1]:8080"
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil && strings.Count(s, ":") > 1 && !strings.Contains(s, "["):
		c.errorf(path, form, "endpoint %q is not ip:port: an IPv6 address needs brackets", s)
	case err != nil:
		c.errorf(path, form, "endpoint %q is not ip:port", s)
	case !isIP(host):
		c.errorf(path, "use an IP address, or replace `endpoints:` with `dns: "+s+"` to have Envoy resolve the name",
			"endpoint %q uses the DNS name %q", s, host)
	case !validPort(port):
		c.errorf(path, form, "endpoint %q has an invalid port %q (want 1..65535)", s, port)
	default:
		c.errorf(path, form, "endpoint %q is not ip:port", s)
	}
	return netip.AddrPort{}, false
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func (c *checker) loadBalancing(path, lb string) {
	switch lb {
	case "", "round_robin", "least_request", "random", "ring_hash", "maglev":
		return
	}
	fix := "use round_robin (the default), least_request, random, ring_hash or maglev"
	if s, ok := closest(lb, []string{"round_robin", "least_request", "random", "ring_hash", "maglev"}); ok {
		fix = fmt.Sprintf("did you mean %q? ", s) + fix
	}
	c.errorf(path, fix, "unknown loadBalancing %q", lb)
}

// maxDuration is the longest duration a policy may give. Envoy refuses
// longer ones ("Duration out-of-range": it converts durations to int64
// milliseconds and nanoseconds); 2562047h is the longest whole number of
// hours Envoy 1.40 accepts, checked with envoy --mode validate.
const maxDuration = 2562047 * time.Hour

// duration parses a Go duration; empty means "use the default" (false,
// without error). A duration above maxDuration, which Envoy refuses, is an
// error; the callers check the lower bounds.
func (c *checker) duration(path, s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil && wellFormedDuration(s): // well formed, beyond int64 nanoseconds
		c.errorf(path, fmt.Sprintf("use at most %s (Envoy refuses longer durations)", maxDuration),
			"duration %q is out of Envoy's range", s)
		return 0, false
	case err != nil:
		c.errorf(path, "use a Go duration such as 500ms, 5s or 1m30s", "invalid duration %q", s)
		return 0, false
	case d > maxDuration:
		c.errorf(path, fmt.Sprintf("use at most %s (Envoy refuses longer durations)", maxDuration),
			"duration %q is out of Envoy's range", s)
		return 0, false
	}
	return d, true
}

func (c *checker) unusedBackends(p *Policy) {
	if c.src.isPartial() {
		return
	}
	used := make(map[string]bool, len(p.Backends))
	var targets []string
	for i, r := range p.Routes {
		if r.Backend == "" && r.Backends == nil || c.routeTargetsTainted(c.routePath(i)) {
			return // that route may use any backend
		}
		targets = appendRouteTargets(targets[:0], r)
		for _, b := range targets {
			used[b] = true
		}
	}
	for i, b := range p.Backends {
		if b.Name != "" && !used[b.Name] {
			c.warnf(indexPath("backends", i), "route to it, or remove it", "backend %q is not used by any route", b.Name)
		}
	}
}

// routeTargetsTainted reports whether the backend, backends or mirror of
// the route at rp failed to load, or something under them did.
func (c *checker) routeTargetsTainted(rp string) bool {
	if !c.src.anyTainted() {
		return false // no path to build
	}
	return c.src.isTainted(fieldPath(rp, "backend")) || c.src.isTainted(fieldPath(rp, "backends")) || c.src.isTainted(fieldPath(rp, "mirror"))
}

// validName reports whether s matches ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-'
}

// nameExample suggests a valid spelling of s, e.g. "User_Svc" → "user-svc".
func nameExample(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r < 128 && isNameByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	ex := strings.Trim(b.String(), "-")
	if !validName(ex) {
		return ""
	}
	return fmt.Sprintf(", e.g. %q", ex)
}
