package policy

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// percentForm is the fix shown for a malformed sampling share.
const percentForm = "write a percentage above 0 and at most 100, e.g. `10%` or `0.5%`"

// observability checks the observability section.
func (c *checker) observability(o *Observability) {
	if o == nil {
		return
	}
	if a := o.AccessLog; a != nil && !a.Off {
		path := "observability.accessLog"
		if a.Path != "" && !filepath.IsAbs(a.Path) {
			c.errorf(fieldPath(path, "path"), "use an absolute path, e.g. /var/log/envoy/access.log (leave it out for stdout)",
				"access-log path %q is not absolute", a.Path)
		}
		c.percent(fieldPath(path, "sample"), a.Sample)
		c.collector(fieldPath(path, "grpc"), a.GRPC)
	}
	if t := o.Tracing; t != nil {
		path := "observability.tracing"
		c.collector(fieldPath(path, "otlp"), t.OTLP)
		c.percent(fieldPath(path, "sampling"), t.Sampling)
	}
}

// routeStatsDefault warns when per-route stats are off only because the
// policy has more than RouteStatsDefaultMaxRoutes routes, so that
// dashboards that read them do not go blank unexplained.
func (c *checker) routeStatsDefault(p *Policy) {
	if routeStatsOn(p.Observability, len(p.Routes)) || p.Observability != nil && p.Observability.RouteStats != nil ||
		c.src.isFailed("observability.routeStats") {
		return
	}
	// Placed without the path index (source.rangeOf builds it for the whole
	// policy, ~20 ms at 10,000 routes): this warning comes with every push
	// of a large valid policy.
	c.diags = append(c.diags, Diagnostic{
		Severity: SeverityWarning, Path: "observability.routeStats", Range: c.src.scanRange("observability"),
		Summary: fmt.Sprintf("per-route Envoy stats are off: the policy has %d routes, more than %d",
			len(p.Routes), RouteStatsDefaultMaxRoutes),
		Detail: "set `observability: {routeStats: false}` to confirm, or `routeStats: true` to keep them " +
			"(each push then costs Envoy about 25 µs per route)",
	})
}

// routeAccessLog checks the accessLog of the route at path.
func (c *checker) routeAccessLog(route string, a *RouteAccessLog) {
	if a != nil && !a.Off {
		c.percent(fieldPath(fieldPath(route, "accessLog"), "sample"), a.Sample)
	}
}

// percent checks a share such as "10%"; "" (the default) is fine.
func (c *checker) percent(path, s string) {
	if s == "" {
		return
	}
	if _, err := parsePercent(s); err != nil {
		c.errorf(path, percentForm, "invalid percentage %q: %v", s, err)
	}
}

// collector checks the address of a collector (OTLP, access-log
// service), host:port.
func (c *checker) collector(path, s string) {
	if s == "" {
		return // a missing otlp was reported by Load
	}
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil || host == "":
		c.errorf(path, "write host:port, e.g. otel-collector:4317 or 127.0.0.1:4317", "address %q is not host:port", s)
	case !validPort(port):
		c.errorf(path, "use a port from 1 to 65535 (OTLP/gRPC listens on 4317 by default)", "address %q has an invalid port %q", s, port)
	}
}

// parsePercent parses "10%" (the % is required) into 10; it must be in
// (0, 100].
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("missing %%")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%q is not a number", num)
	case v <= 0 || v > 100:
		return 0, fmt.Errorf("%v is not above 0 and at most 100", v)
	}
	return v, nil
}
