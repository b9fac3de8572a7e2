package policy

import (
	"fmt"
	"strings"
	"testing"
)

// boundPolicy renders a policy with one flow-style line added to the
// gateway (gw), the route (route), the backend (be) or the top level
// (top); "%v" in it is replaced by the value.
func boundPolicy(top, gw, route, be, v string) string {
	sub := func(s string) string { return strings.ReplaceAll(s, "%v", v) }
	var b strings.Builder
	b.WriteString("version: 1\n" + sub(top) + "\ngateways:\n  - name: gw\n")
	if !strings.Contains(gw, "listeners:") {
		b.WriteString("    listeners: [{name: http, port: 8080}]\n")
	}
	b.WriteString("    " + sub(gw) + "\nroutes:\n  - name: r\n    match: {pathPrefix: /}\n    auth: none\n")
	if !strings.Contains(route, "directResponse") && !strings.Contains(route, "redirect") && !strings.Contains(route, "backends:") {
		b.WriteString("    backend: be\n")
	}
	b.WriteString("    " + sub(route) + "\nbackends:\n  - name: be\n")
	if !strings.Contains(be, "endpoints:") {
		b.WriteString("    endpoints: ['10.0.0.1:80']\n")
	}
	b.WriteString("    " + sub(be) + "\n  - name: be2\n    endpoints: ['10.0.0.2:80']\n")
	return b.String()
}

// TestValidateEnvoyBounds checks every duration and number field that
// reaches Envoy at its bounds (docs/internals/envoy-bounds.md): the value
// just inside is valid, the one just outside is an error on the field's
// path that names the allowed range.
func TestValidateEnvoyBounds(t *testing.T) {
	tests := []struct {
		field           string // the diagnostic's path
		top, gw, route  string
		be              string
		inside, outside string
		fix             string // a substring of the diagnostic's fix
	}{
		// Durations Envoy counts in milliseconds: > 0 and < 1ms is refused.
		{field: "routes[0].timeout", route: "timeout: %v", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "routes[0].timeout", route: "timeout: %v", inside: "2562047h", outside: "2562048h", fix: "at most 2562047h"},
		{field: "routes[0].idleTimeout", route: "idleTimeout: %v", inside: "1ms", outside: "1ns", fix: "at least 1ms"},
		{field: "routes[0].retries.perTryTimeout", route: "retries: {perTryTimeout: %v}", inside: "1ms", outside: "999999ns", fix: "at least 1ms"},
		{field: "routes[0].retries.backoff.base", route: "retries: {backoff: {base: %v, max: 1s}}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "routes[0].retries.backoff.max", route: "retries: {backoff: {base: 1ms, max: %v}}", inside: "1ms", outside: "999us", fix: "max of at least the base"},
		{field: "routes[0].retries.backoff.max", route: "retries: {backoff: {base: 2s, max: %v}}", inside: "2s", outside: "1999ms", fix: "max of at least the base"},
		{field: "routes[0].retries.attempts", route: "retries: {attempts: %v}", inside: "10", outside: "11", fix: "1"},
		{field: "gateways[0].edge.requestHeadersTimeout", gw: "edge: {requestHeadersTimeout: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "gateways[0].edge.streamIdleTimeout", gw: "edge: {streamIdleTimeout: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "gateways[0].edge.idleTimeout", gw: "edge: {idleTimeout: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].connectTimeout", be: "connectTimeout: %v", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].healthCheck.interval", be: "healthCheck: {path: /h, interval: %v, timeout: 1ms}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].healthCheck.timeout", be: "healthCheck: {path: /h, timeout: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].outlierDetection.interval", be: "outlierDetection: {interval: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].outlierDetection.baseEjectionTime", be: "outlierDetection: {baseEjectionTime: %v}", inside: "1ms", outside: "999us", fix: "at least 1ms"},
		{field: "backends[0].loadBalancing.hashOn.cookie.ttl", be: "loadBalancing: {policy: ring_hash, hashOn: {cookie: {name: c, ttl: %v}}}", inside: "1s", outside: "1500ms", fix: "whole seconds"},
		{field: "gateways[0].cors.maxAge", gw: "cors: {allowOrigins: ['https://a.example.com'], maxAge: %v}", inside: "1s", outside: "1500ms", fix: "whole"},
		// uint32 fields: at most 4294967295.
		{field: "backends[0].circuitBreakers.maxConnections", be: "circuitBreakers: {maxConnections: %v}", inside: "4294967295", outside: "4294967296", fix: "at most 4294967295"},
		{field: "backends[0].circuitBreakers.maxPendingRequests", be: "circuitBreakers: {maxPendingRequests: %v}", inside: "4294967295", outside: "4294967296", fix: "at most 4294967295"},
		{field: "backends[0].circuitBreakers.maxRequests", be: "circuitBreakers: {maxRequests: %v}", inside: "4294967295", outside: "4294967296", fix: "at most 4294967295"},
		{field: "backends[0].circuitBreakers.maxRetries", be: "circuitBreakers: {maxRetries: %v}", inside: "4294967295", outside: "4294967296", fix: "at most 4294967295"},
		{field: "backends[0].outlierDetection.consecutive5xx", be: "outlierDetection: {consecutive5xx: %v}", inside: "4294967295", outside: "4294967296", fix: "at most 4294967295"},
		{field: "gateways[0].compression.minLength", gw: "compression: {algorithms: [gzip], minLength: %v}", inside: "4294967295", outside: "4294967296", fix: "4294967295"},
		// Percentages, ports, statuses, weights and Envoy's own limits.
		{field: "backends[0].outlierDetection.maxEjectionPercent", be: "outlierDetection: {maxEjectionPercent: %v}", inside: "100", outside: "101", fix: "1 to 100"},
		{field: "routes[0].mirror.percent", route: "mirror: {backend: be2, percent: %v}", inside: "100", outside: "101", fix: "100"},
		{field: "routes[0].redirect.port", route: "redirect: {host: x.example.com, port: %v}", inside: "65535", outside: "65536", fix: "1 to 65535"},
		{field: "routes[0].redirect.port", route: "redirect: {host: x.example.com, port: %v}", inside: "1", outside: "0", fix: "1 to 65535"},
		{field: "gateways[0].listeners[0].port", gw: "listeners: [{name: http, port: %v}]", inside: "65535", outside: "65536", fix: "65535"},
		{field: "routes[0].directResponse.status", route: "directResponse: {status: %v}", inside: "599", outside: "600", fix: "599"},
		{field: "routes[0].directResponse.status", route: "directResponse: {status: %v}", inside: "200", outside: "199", fix: "599"},
		{field: "backends[0].healthCheck.expectedStatuses[0]", be: "healthCheck: {path: /h, expectedStatuses: [%v]}", inside: "599", outside: "600", fix: "599"},
		{field: "backends[0].healthCheck.healthyThreshold", be: "healthCheck: {path: /h, healthyThreshold: %v}", inside: "100", outside: "101", fix: "100"},
		{field: "backends[0].healthCheck.unhealthyThreshold", be: "healthCheck: {path: /h, unhealthyThreshold: %v}", inside: "100", outside: "101", fix: "100"},
		{field: "backends[0].endpoints[0].weight", be: "endpoints: [{address: '10.0.0.1:80', weight: %v}]", inside: "10000", outside: "10001", fix: "10000"},
		{field: "routes[0].backends[0].weight", route: "backends: [{name: be, weight: %v}, {name: be2, weight: 1}]", inside: "10000", outside: "10001", fix: "10000"},
		{field: "gateways[0].edge.maxRequestHeadersKb", gw: "edge: {maxRequestHeadersKb: %v}", inside: "8192", outside: "8193", fix: "8192"},
		{field: "gateways[0].edge.xffTrustedHops", gw: "edge: {xffTrustedHops: %v}", inside: "10", outside: "11", fix: "10"},
		{field: "routes[0].transform.maxBodyBytes", route: "transform: {request: json-to-xml, maxBodyBytes: %v}", inside: "1048576", outside: "1048577", fix: "1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.outside, func(t *testing.T) {
			if ds := buildString(boundPolicy(tt.top, tt.gw, tt.route, tt.be, tt.inside)).Errors(); len(ds) > 0 {
				t.Fatalf("%s = %s (just inside): %v", tt.field, tt.inside, render(ds))
			}
			ds := buildString(boundPolicy(tt.top, tt.gw, tt.route, tt.be, tt.outside)).Errors()
			for _, d := range ds {
				if d.Path == tt.field && strings.Contains(d.Detail, tt.fix) {
					return
				}
			}
			t.Fatalf("%s = %s (just outside): want an error on %s whose fix says %q, got %v %+v", tt.field, tt.outside, tt.field, tt.fix, render(ds), ds)
		})
	}
}

func TestWellFormedDuration(t *testing.T) {
	for s, want := range map[string]bool{
		"2562048h": true, "1h30m": true, "1.5s": true, ".5s": true, "-3ms": true, "0": true, "10µs": true,
		"99999999999999999999h": true, "": false, "5": false, "h": false, "1x": false, "1..5s": false, ".s": false, "1s2": false,
	} {
		if got := wellFormedDuration(s); got != want {
			t.Errorf("wellFormedDuration(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestValidateHeadersToAddLimit: Envoy's PGV rules allow 1000 added or set
// headers per direction on a route and on a route table (HSTS takes one of
// the gateway's response headers).
func TestValidateHeadersToAddLimit(t *testing.T) {
	many := func(op string, from, n int) string {
		var b []string
		for i := from; i < from+n; i++ {
			b = append(b, fmt.Sprintf("x-h%d: v", i))
		}
		return op + ": {" + strings.Join(b, ", ") + "}"
	}
	tests := []struct {
		field, gw, route string
		inside, outside  int
	}{
		{"routes[0].headers.request", "", "headers: {request: {%v}}", 1000, 1001},
		{"routes[0].headers.response", "", "headers: {response: {%v}}", 1000, 1001},
		{"gateways[0].headers.request", "headers: {request: {%v}}", "", 1000, 1001},
		{"gateways[0].headers.response", "hsts: {maxAge: 60}\n    headers: {response: {%v}}", "", 999, 1000},
	}
	for _, tt := range tests {
		for _, n := range []int{tt.inside, tt.outside} {
			half := n / 2
			v := many("add", 0, half) + ", " + many("set", half, n-half)
			ds := buildString(boundPolicy("", tt.gw, tt.route, "", v)).Errors()
			refused := false
			for _, d := range ds {
				refused = refused || d.Path == tt.field && strings.Contains(d.Detail, "at most")
			}
			if refused != (n == tt.outside) {
				t.Errorf("%s with %d headers: refused %v, want %v: %v", tt.field, n, refused, n == tt.outside, render(ds))
			}
		}
	}
}
