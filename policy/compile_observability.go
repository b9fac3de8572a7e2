package policy

import (
	"net"
	"strconv"

	"github.com/tollgate/tollgate/policy/ir"
)

// compileObservability compiles the observability section of a policy of
// routes routes; sampling shares of 100% compile to the zero value (the
// default).
func compileObservability(o *Observability, routes int) ir.Observability {
	var out ir.Observability
	out.RouteStatsOff = !routeStatsOn(o, routes)
	if o == nil {
		return out
	}
	if a := o.AccessLog; a != nil {
		out.AccessLogOff = a.Off
		out.AccessLogPath = a.Path
		out.AccessLogPercent = percentOrZero(a.Sample)
		out.AccessLogGRPC = a.GRPC
	}
	if t := o.Tracing; t != nil {
		host, port, _ := net.SplitHostPort(t.OTLP)
		p, _ := strconv.ParseUint(port, 10, 32)
		out.Tracing = &ir.Tracing{Host: host, Port: uint32(p), SamplingPercent: 100, ServiceName: t.ServiceName}
		if t.Sampling != "" {
			out.Tracing.SamplingPercent, _ = parsePercent(t.Sampling)
		}
	}
	return out
}

// compileRouteAccessLog compiles a route's access-log override.
func compileRouteAccessLog(a *RouteAccessLog) *ir.RouteAccessLog {
	if a == nil || (!a.Off && a.Sample == "") {
		return nil
	}
	out := &ir.RouteAccessLog{Off: a.Off}
	if !a.Off {
		out.Percent, _ = parsePercent(a.Sample) // 100% stays: it overrides a lower policy-wide share
	}
	return out
}

// percentOrZero parses a valid share; "" and 100% give 0, the default.
func percentOrZero(s string) float64 {
	if s == "" {
		return 0
	}
	v, _ := parsePercent(s)
	if v == 100 {
		return 0
	}
	return v
}
