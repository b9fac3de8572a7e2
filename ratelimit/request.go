package ratelimit

import (
	"context"
	"errors"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// Request is what an in-process caller (the ext_authz service, which takes
// a route's limits inside its own Check) knows of a request: the values
// Envoy's route actions would have put in the RLS descriptor.
type Request struct {
	// Route is the policy route name.
	Route string
	// Consumer and Tier are the authenticated caller's, as the ext_authz
	// service publishes them; empty when there is no caller.
	Consumer, Tier string
	// ClientIP is the trusted client address: the value of Envoy's
	// remote_address rate-limit action (the peer, or the address that
	// xffTrustedHops selects), never a value the client controls.
	ClientIP string
	// Header returns a request header's value (lower-case name) as the
	// ratelimit filter would read it, after ext_authz's mutations; "" when
	// absent. Nil means no headers. It is called only for the headers the
	// route's limits are keyed by.
	Header func(name string) string
}

// errNoPolicy is a Decide before the first Swap.
var errNoPolicy = errors.New("rate limits: no policy yet")

// Decide takes req's limits exactly as ShouldRateLimit takes the limits of
// the equivalent descriptor: same table, counter keys, backend (one Redis
// script per hash tag), failure mode and backoff, shadow mode, metrics and
// response headers. A route without limits is "unlimited" and costs
// nothing. Err is set when the table is not loaded yet or the backend
// failed while the failure mode is closed.
func (s *Service) Decide(ctx context.Context, req Request) Decision {
	t := s.table.Load()
	if t == nil {
		return Decision{route: req.Route, err: errNoPolicy}
	}
	d := s.decide(ctx, t, []caller{req.caller(t)})
	s.opts.Metrics.decision(d)
	if d.err != nil {
		s.log.Warn("rate limit backend failed; the failure mode applies", "err", d.err)
	}
	return d
}

// caller is req as parsed from a descriptor: header values only for the
// headers the route keys on (an absent or empty one is left out, as Envoy
// skips the entry).
func (req Request) caller(t *Table) caller {
	c := caller{route: req.Route, consumer: req.Consumer, tier: req.Tier, ip: req.ClientIP}
	if req.Header == nil {
		return c
	}
	for _, b := range t.routes[req.Route].By {
		name, ok := strings.CutPrefix(b, ir.DescriptorHeaderPrefix)
		if !ok {
			continue
		}
		if v := req.Header(name); v != "" {
			if c.headers == nil {
				c.headers = map[string]string{}
			}
			c.headers[b] = v
		}
	}
	return c
}
