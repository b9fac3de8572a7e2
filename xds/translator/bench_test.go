package translator

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// BenchmarkTranslate measures Translate followed by Validate for a gateway
// with two listeners, ten virtual hosts and the given number of routes in
// total (a mix of path, prefix and regex matches with method and header
// conditions) over routes/10 backends of three endpoints each.
func BenchmarkTranslate(b *testing.B) {
	for _, routes := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			cfg := benchConfig(routes)
			b.ReportAllocs()
			for b.Loop() {
				r, err := Translate(cfg, "bench", Options{AuthzAddress: "10.255.0.1:9191"})
				if err != nil {
					b.Fatal(err)
				}
				if err := Validate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTranslateValidated is BenchmarkTranslate through
// TranslateValidated with the previous version's resources: the same
// policy with one route more, so every other route is shared and not
// validated again.
func BenchmarkTranslateValidated(b *testing.B) {
	opts, types := Options{AuthzAddress: "10.255.0.1:9191"}, &envoy.AnyTypes{}
	for _, routes := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			prev, err := TranslateValidated(benchConfig(routes), "bench", opts, nil, types)
			if err != nil {
				b.Fatal(err)
			}
			cfg := benchConfig(routes + 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := TranslateValidated(cfg, "bench", opts, prev, types); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchConfig builds a valid IR with n routes.
func benchConfig(n int) *ir.Config {
	const vhosts = 10
	backends := max(n/10, 1)
	cfg := &ir.Config{Gateways: []ir.Gateway{{
		Name: "bench",
		Listeners: []ir.Listener{
			{Name: "http", Address: "0.0.0.0", Port: 8080},
			{Name: "http-alt", Address: "0.0.0.0", Port: 8081},
		},
	}}}
	gw := &cfg.Gateways[0]
	for v := range vhosts {
		name, domain := fmt.Sprintf("host-%02d.example.com", v), fmt.Sprintf("host-%02d.example.com", v)
		if v == 0 {
			name, domain = "any", "*"
		}
		gw.VirtualHosts = append(gw.VirtualHosts, ir.VirtualHost{Name: name, Domains: []string{domain}})
	}
	for i := range n {
		vh := &gw.VirtualHosts[i%vhosts]
		vh.Routes = append(vh.Routes, benchRoute(i, fmt.Sprintf("backend-%05d", i%backends)))
	}
	for i := range backends {
		be := ir.Backend{Name: fmt.Sprintf("backend-%05d", i), LoadBalancing: ir.LeastRequest, ConnectTimeout: time.Second}
		for e := range 3 {
			be.Endpoints = append(be.Endpoints, ir.Endpoint{Host: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, e+1), Port: 8080})
		}
		cfg.Backends = append(cfg.Backends, be)
	}
	return cfg
}

// benchRoute returns route i: by turns an exact path with a method, a
// regex with a header, and a rewriting prefix with two methods; one route in
// ten is public, the others need an API key or a JWT and a role.
func benchRoute(i int, backend string) ir.Route {
	r := ir.Route{Name: fmt.Sprintf("route-%05d", i), Backend: backend, Timeout: 15 * time.Second}
	r.Auth = ir.RouteAuth{Methods: []string{ir.MethodAPIKey, ir.MethodJWT}, Roles: []string{"admin", "reader"}}
	if i%10 == 0 {
		r.Auth = ir.RouteAuth{Public: true}
	}
	switch i % 3 {
	case 0:
		r.Match = ir.Match{Path: fmt.Sprintf("/svc/%d/status", i), Methods: []string{"GET"}}
	case 1:
		r.Match = ir.Match{
			PathRegex: fmt.Sprintf("/svc/%d/items/[0-9]+", i),
			Headers:   []ir.HeaderMatch{{Name: "x-tenant", Prefix: "acme-"}},
		}
	default:
		r.Match = ir.Match{PathPrefix: fmt.Sprintf("/svc/%d/", i), Methods: []string{"GET", "POST"}}
		r.RewritePrefix, r.PrefixRewrite = true, "/"
	}
	return r
}
