package cli

import (
	"context"
	"fmt"
	"github.com/tollgate/tollgate/envoy"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/xds/translator"
)

// boundField is one duration or number field of the policy, placed in a
// policy that makes the translator emit the Envoy field it becomes.
type boundField struct {
	// path names the policy field, as in docs/reference/policy.
	path string
	// top, gw, route and be are flow-style YAML lines added to the top
	// level, the gateway, the route and the backend; "%s" is the value.
	top, gw, route, be string
	// routeAuth replaces the route's `auth: none`.
	routeAuth string
	// durations says the field is a duration (probed with durationProbes),
	// else an integer (intProbes).
	durations bool
}

// durationProbes and intProbes are the values every field is tried with:
// zero, the smallest units, Envoy's 50 ms and whole-second granularities,
// and the uint32, int32 and int64 edges.
var (
	durationProbes = []string{"0s", "1ns", "999us", "1ms", "49ms", "50ms", "1s", "4294967295s", "4294967296s",
		"2147483647s", "2147483648s", "315576000000s", "2562047h"}
	intProbes = []string{"-1", "0", "1", "99", "100", "101", "599", "600", "8192", "8193", "10000", "10001",
		"65535", "65536", "2147483647", "2147483648", "4294967295", "4294967296", "9223372036854775807"}
)

// boundFields lists every duration and number field of the policy that
// reaches Envoy (docs/internals/envoy-bounds.md has the table).
func boundFields() []boundField {
	jwt := "auth: {jwt: [{name: corp, issuer: https://idp.example.com/, jwksUri: https://idp.example.com/jwks, %s}]}"
	tiers := "auth: {apiKeys: {}}\nrateLimits: {tiers: {free: [%s]}, defaultTier: free}"
	tier := fmt.Sprintf(tiers, "{requests: 100, per: minute}")
	return []boundField{
		{path: "routes[].timeout", route: "timeout: %s", durations: true},
		{path: "routes[].idleTimeout", route: "idleTimeout: %s", durations: true},
		{path: "routes[].retries.perTryTimeout", route: "retries: {perTryTimeout: %s}", durations: true},
		{path: "routes[].retries.backoff.base", route: "retries: {backoff: {base: %s}}", durations: true},
		{path: "routes[].retries.backoff.max", route: "retries: {backoff: {base: 1ms, max: %s}}", durations: true},
		{path: "routes[].retries.attempts", route: "retries: {attempts: %s}"},
		{path: "routes[].mirror.percent", route: "mirror: {backend: be, percent: %s}"},
		{path: "routes[].backends[].weight", route: "backends: [{name: be, weight: %s}, {name: be2, weight: 1}]"},
		{path: "routes[].directResponse.status", route: "directResponse: {status: %s}"},
		{path: "routes[].redirect.port", route: "redirect: {host: x.example.com, port: %s}"},
		{path: "routes[].transform.maxBodyBytes", route: "transform: {request: json-to-xml, maxBodyBytes: %s}"},
		{path: "routes[].cors.maxAge", route: "cors: {allowOrigins: ['https://a.example.com'], maxAge: %s}", durations: true},
		{path: "routes[].compression.minLength", route: "compression: {algorithms: [gzip], minLength: %s}"},
		{path: "routes[].rateLimit.extra[].requests", top: tier, route: "rateLimit: {extra: [{requests: %s, per: second}]}", routeAuth: "auth: {methods: [apiKey]}"},
		{path: "routes[].rateLimit.extra[].burst", top: tier, route: "rateLimit: {extra: [{requests: 1, per: second, burst: %s}]}", routeAuth: "auth: {methods: [apiKey]}"},
		{path: "rateLimits.tiers.<name>[].requests", top: fmt.Sprintf(tiers, "{requests: %s, per: minute}"), routeAuth: "auth: {methods: [apiKey]}"},
		{path: "rateLimits.tiers.<name>[].burst", top: fmt.Sprintf(tiers, "{requests: 1, per: minute, burst: %s}"), routeAuth: "auth: {methods: [apiKey]}"},
		{path: "rateLimits.anonymous[].requests", top: "rateLimits: {anonymous: [{requests: %s, per: second}]}"},
		{path: "rateLimits.anonymous[].burst", top: "rateLimits: {anonymous: [{requests: 1, per: second, burst: %s}]}"},
		{path: "gateways[].listeners[].port", gw: "listeners: [{name: http, port: %s}]"},
		{path: "gateways[].auth.timeout", top: "auth: {apiKeys: {}}", gw: "auth: {timeout: %s}", routeAuth: "auth: {methods: [apiKey]}", durations: true},
		{path: "gateways[].hsts.maxAge", gw: "hsts: {maxAge: %s}"},
		{path: "gateways[].cors.maxAge", gw: "cors: {allowOrigins: ['https://a.example.com'], maxAge: %s}", durations: true},
		{path: "gateways[].compression.minLength", gw: "compression: {algorithms: [gzip], minLength: %s}"},
		{path: "gateways[].edge.xffTrustedHops", gw: "edge: {xffTrustedHops: %s}"},
		{path: "gateways[].edge.maxRequestHeadersKb", gw: "edge: {maxRequestHeadersKb: %s}"},
		{path: "gateways[].edge.maxHeadersCount", gw: "edge: {maxHeadersCount: %s}"},
		{path: "gateways[].edge.requestHeadersTimeout", gw: "edge: {requestHeadersTimeout: %s}", durations: true},
		{path: "gateways[].edge.streamIdleTimeout", gw: "edge: {streamIdleTimeout: %s}", durations: true},
		{path: "gateways[].edge.idleTimeout", gw: "edge: {idleTimeout: %s}", durations: true},
		{path: "backends[].endpoints[].weight", be: "endpoints: [{address: '10.0.0.1:80', weight: %s}]"},
		{path: "backends[].connectTimeout", be: "connectTimeout: %s", durations: true},
		{path: "backends[].loadBalancing.hashOn.cookie.ttl", be: "loadBalancing: {policy: ring_hash, hashOn: {cookie: {name: c, ttl: %s}}}", durations: true},
		{path: "backends[].healthCheck.interval", be: "healthCheck: {path: /h, interval: %s, timeout: 1ms}", durations: true},
		{path: "backends[].healthCheck.timeout", be: "healthCheck: {path: /h, interval: 2562047h, timeout: %s}", durations: true},
		{path: "backends[].healthCheck.healthyThreshold", be: "healthCheck: {path: /h, healthyThreshold: %s}"},
		{path: "backends[].healthCheck.unhealthyThreshold", be: "healthCheck: {path: /h, unhealthyThreshold: %s}"},
		{path: "backends[].healthCheck.expectedStatuses", be: "healthCheck: {path: /h, expectedStatuses: [%s]}"},
		{path: "backends[].outlierDetection.consecutive5xx", be: "outlierDetection: {consecutive5xx: %s}"},
		{path: "backends[].outlierDetection.interval", be: "outlierDetection: {interval: %s}", durations: true},
		{path: "backends[].outlierDetection.baseEjectionTime", be: "outlierDetection: {baseEjectionTime: %s}", durations: true},
		{path: "backends[].outlierDetection.maxEjectionPercent", be: "outlierDetection: {maxEjectionPercent: %s}"},
		{path: "backends[].circuitBreakers.maxConnections", be: "circuitBreakers: {maxConnections: %s}"},
		{path: "backends[].circuitBreakers.maxPendingRequests", be: "circuitBreakers: {maxPendingRequests: %s}"},
		{path: "backends[].circuitBreakers.maxRequests", be: "circuitBreakers: {maxRequests: %s}"},
		{path: "backends[].circuitBreakers.maxRetries", be: "circuitBreakers: {maxRetries: %s}"},
		{path: "auth.jwt[].clockSkew", top: fmt.Sprintf(jwt, "clockSkew: %s"), routeAuth: "auth: {methods: [jwt]}", durations: true},
		{path: "auth.jwt[].maxLifetime", top: fmt.Sprintf(jwt, "maxLifetime: %s"), routeAuth: "auth: {methods: [jwt]}", durations: true},
	}
}

// policyFor renders f's policy with value v.
func (f boundField) policyFor(v string) string {
	sub := func(s string) string {
		if strings.Contains(s, "%s") {
			return strings.ReplaceAll(s, "%s", v)
		}
		return s
	}
	auth := "auth: none"
	if f.routeAuth != "" {
		auth = f.routeAuth
	}
	var b strings.Builder
	b.WriteString("version: 1\n")
	if f.top != "" {
		b.WriteString(sub(f.top) + "\n")
	}
	b.WriteString("gateways:\n  - name: gw\n")
	if !strings.Contains(f.gw, "listeners:") {
		b.WriteString("    listeners: [{name: http, port: 8080}]\n")
	}
	if f.gw != "" {
		b.WriteString("    " + sub(f.gw) + "\n")
	}
	b.WriteString("routes:\n  - name: r\n    match: {pathPrefix: /}\n    " + auth + "\n")
	if !strings.Contains(f.route, "backends:") && !strings.Contains(f.route, "directResponse") && !strings.Contains(f.route, "redirect") {
		b.WriteString("    backend: be\n")
	}
	if f.route != "" {
		b.WriteString("    " + sub(f.route) + "\n")
	}
	b.WriteString("backends:\n  - name: be\n")
	if !strings.Contains(f.be, "endpoints:") {
		b.WriteString("    endpoints: ['10.0.0.1:80']\n")
	}
	if f.be != "" {
		b.WriteString("    " + sub(f.be) + "\n")
	}
	b.WriteString("  - name: be2\n    endpoints: ['10.0.0.2:80']\n")
	return b.String()
}

// boundVerdict is what validate and the translator say about a policy.
type boundVerdict struct {
	refused bool   // policy.Build reported an error
	errs    string // the errors, when refused
	pgv     error  // translator.Translate or translator.Validate failed
}

// judge builds src, and when validate accepts it, translates every gateway
// and runs the PGV rules (ValidateAll on every resource and every Any in
// it) and the translator's own consistency checks.
func judge(src string) boundVerdict {
	cfg, diags := policy.Build([]policy.File{{Name: "p.yaml", Content: []byte(src)}})
	if errs := diags.Errors(); len(errs) > 0 || cfg == nil {
		var b strings.Builder
		for _, d := range errs {
			fmt.Fprintf(&b, "%s: %s (%s); ", d.Path, d.Summary, d.Detail)
		}
		return boundVerdict{refused: true, errs: b.String()}
	}
	for _, g := range cfg.Gateways {
		r, err := translator.Translate(cfg, g.Name, offlineTranslateOptions())
		if err == nil {
			err = translator.Validate(r)
		}
		if err != nil {
			return boundVerdict{pgv: err}
		}
	}
	return boundVerdict{}
}

// TestValidateRefusesWhatPGVRefuses is the differential test of validate
// against Envoy's proto constraints: every duration and number field of
// the policy is tried at and beyond the edges of the Envoy field it
// becomes, and every policy validate accepts must translate into
// resources that pass go-control-plane's ValidateAll.
func TestValidateRefusesWhatPGVRefuses(t *testing.T) {
	for _, f := range boundFields() {
		probes := intProbes
		if f.durations {
			probes = durationProbes
		}
		for _, v := range probes {
			got := judge(f.policyFor(v))
			if got.pgv != nil {
				t.Errorf("%s = %s: validate accepts it but the Envoy configuration is invalid: %v", f.path, v, got.pgv)
			}
			if testing.Verbose() {
				t.Logf("%s = %s: refused=%v %s", f.path, v, got.refused, got.errs)
			}
		}
	}
}

// TestBoundFieldsReachEnvoy guards the differential test itself: every
// field's policy is valid with an ordinary value, so the probes exercise
// the translator rather than an unrelated validate error.
func TestBoundFieldsReachEnvoy(t *testing.T) {
	for _, f := range boundFields() {
		v := "7"
		if f.durations {
			v = "2s"
		}
		if f.path == "gateways[].listeners[].port" {
			v = "8080"
		} else if strings.Contains(f.path, "Statuses") || strings.Contains(f.path, "status") {
			v = "200"
		}
		if got := judge(f.policyFor(v)); got.refused || got.pgv != nil {
			t.Errorf("%s = %s: want a valid policy, got %s %v\n%s", f.path, v, got.errs, got.pgv, f.policyFor(v))
		}
	}
}

// TestValidateRefusesWhatEnvoyRefuses is the differential test against the
// real Envoy (envoy --mode validate, skipped without one): for every field,
// the smallest and largest probe value validate accepts must be accepted by
// Envoy too. It catches Envoy's own checks beyond PGV (durations converted
// to milliseconds, outlier ejection times, retry back-off order...).
func TestValidateRefusesWhatEnvoyRefuses(t *testing.T) {
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	for _, f := range boundFields() {
		probes := intProbes
		if f.durations {
			probes = durationProbes
		}
		var accepted []string
		for _, v := range probes {
			if !judge(f.policyFor(v)).refused {
				accepted = append(accepted, v)
			}
		}
		if len(accepted) == 0 {
			t.Errorf("%s: validate refuses every probe", f.path)
			continue
		}
		for _, v := range []string{accepted[0], accepted[len(accepted)-1]} {
			cfg, _ := policy.Build([]policy.File{{Name: "p.yaml", Content: []byte(f.policyFor(v))}})
			checks, err := validateWithEnvoy(context.Background(), cfg, bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if !c.OK {
					t.Errorf("%s = %s: validate accepts it, Envoy refuses it: %s", f.path, v, c.Error)
				}
			}
		}
	}
}

// TestDumpBoundBootstraps writes the static bootstrap of every accepted
// extreme probe to $BOUNDS_DUMP (a manual aid for running Envoy in serve
// mode on them; skipped otherwise).
func TestDumpBoundBootstraps(t *testing.T) {
	dir := os.Getenv("BOUNDS_DUMP")
	if dir == "" {
		t.Skip("BOUNDS_DUMP not set")
	}
	for i, f := range boundFields() {
		probes := intProbes
		if f.durations {
			probes = durationProbes
		}
		for _, v := range probes {
			src := f.policyFor(v)
			if judge(src).refused {
				continue
			}
			cfg, _ := policy.Build([]policy.File{{Name: "p.yaml", Content: []byte(src)}})
			r, err := translator.Translate(cfg, "gw", offlineTranslateOptions())
			if err != nil {
				t.Fatal(err)
			}
			b, err := translator.StaticBootstrap(r)
			if err != nil {
				t.Fatal(err)
			}
			y, err := envoy.YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%02d_%s_%s.yaml", i, strings.NewReplacer("[]", "", ".", "_", "<", "", ">", "").Replace(f.path), v)
			if err := os.WriteFile(filepath.Join(dir, name), y, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestValidateRefusesWhatPGVRefusesLists is the differential test for the
// list bounds: 1000 and 1001 added or set headers (and query parameters)
// on a route and a gateway, split between add and set, with and without
// the gateway's HSTS header.
func TestValidateRefusesWhatPGVRefusesLists(t *testing.T) {
	many := func(n int) string {
		var add, set []string
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				add = append(add, fmt.Sprintf("x-h%d: v", i))
			} else {
				set = append(set, fmt.Sprintf("x-h%d: v", i))
			}
		}
		return "{add: {" + strings.Join(add, ", ") + "}, set: {" + strings.Join(set, ", ") + "}}"
	}
	for _, f := range []boundField{
		{path: "routes[].headers.request", route: "headers: {request: %s}"},
		{path: "routes[].headers.response", route: "headers: {response: %s}"},
		{path: "routes[].query", route: "query: %s"},
		{path: "gateways[].headers.request", gw: "headers: {request: %s}"},
		{path: "gateways[].headers.response", gw: "headers: {response: %s}"},
		{path: "gateways[].headers.response+hsts", gw: "hsts: {maxAge: 60}\n    headers: {response: %s}"},
	} {
		for _, n := range []int{999, 1000, 1001} {
			if got := judge(f.policyFor(many(n))); got.pgv != nil {
				t.Errorf("%s with %d headers: validate accepts it but the Envoy configuration is invalid: %.300v", f.path, n, got.pgv)
			}
		}
	}
}
