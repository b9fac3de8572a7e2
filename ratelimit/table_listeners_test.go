package ratelimit

import (
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestTableListeners: a route counts the most listeners serving it in one
// gateway (each has its own route configuration in Envoy); a plaintext
// listener that only redirects to HTTPS does not count; at least 1.
func TestTableListeners(t *testing.T) {
	limited := ir.RouteRateLimit{Enabled: true, Anonymous: true}
	gw := func(name string, redirect bool, tls []bool, routes ...string) ir.Gateway {
		g := ir.Gateway{Name: name, RedirectHTTPS: redirect}
		for i, t := range tls {
			l := ir.Listener{Name: string(rune('a' + i))}
			if t {
				l.TLS = &ir.ListenerTLS{}
			}
			g.Listeners = append(g.Listeners, l)
		}
		vh := ir.VirtualHost{Name: "h"}
		for _, r := range routes {
			vh.Routes = append(vh.Routes, ir.Route{Name: r, RateLimit: limited})
		}
		g.VirtualHosts = []ir.VirtualHost{vh}
		return g
	}
	for _, tc := range []struct {
		name  string
		gws   []ir.Gateway
		route string
		want  int
	}{
		{name: "one listener", gws: []ir.Gateway{gw("g", false, []bool{false}, "r")}, route: "r", want: 1},
		{name: "http and https", gws: []ir.Gateway{gw("g", false, []bool{false, true}, "r")}, route: "r", want: 2},
		{name: "http redirects to https", gws: []ir.Gateway{gw("g", true, []bool{false, true}, "r")}, route: "r", want: 1},
		{name: "the most of its gateways", gws: []ir.Gateway{gw("g", false, []bool{false}, "r"), gw("h", false, []bool{false, false, true}, "r")},
			route: "r", want: 3},
		{name: "unknown route", gws: []ir.Gateway{gw("g", false, []bool{false, true}, "r")}, route: "x", want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewTable(&ir.Config{Gateways: tc.gws}).Listeners(tc.route); got != tc.want {
				t.Fatalf("Listeners(%q) = %d, want %d", tc.route, got, tc.want)
			}
		})
	}
}
