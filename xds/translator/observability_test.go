package translator

import (
	"bytes"
	"os"
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
)

func TestAccessLogFilter(t *testing.T) {
	route := func(name string, al *ir.RouteAccessLog) ir.Route {
		return ir.Route{Name: name, Backend: "b", AccessLog: al}
	}
	tests := []struct {
		name   string
		obs    ir.Observability
		routes []ir.Route
		want   string // shape of the filter
	}{
		{"every request", ir.Observability{}, []ir.Route{route("a", nil)}, "none"},
		{"route at 100% like the default", ir.Observability{}, []ir.Route{route("a", &ir.RouteAccessLog{Percent: 100})}, "none"},
		{"policy-wide share", ir.Observability{AccessLogPercent: 10}, []ir.Route{route("a", nil)}, "runtime"},
		{"one route off", ir.Observability{}, []ir.Route{route("a", &ir.RouteAccessLog{Off: true}), route("b", nil)}, "cel"},
		{"route share and route off", ir.Observability{}, []ir.Route{route("a", &ir.RouteAccessLog{Off: true}), route("b", &ir.RouteAccessLog{Percent: 5})}, "or"},
		{"route 100% over a policy-wide 10%", ir.Observability{AccessLogPercent: 10}, []ir.Route{route("a", &ir.RouteAccessLog{Percent: 100})}, "or"},
	}
	for _, tt := range tests {
		gw := &ir.Gateway{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: tt.routes}}}
		f, err := accessLogFilter(&tt.obs, gw)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := "none"
		switch {
		case f == nil:
		case f.GetRuntimeFilter() != nil:
			got = "runtime"
		case f.GetExtensionFilter() != nil:
			got = "cel"
		case f.GetOrFilter() != nil:
			got = "or"
		default:
			got = f.String()
		}
		if got != tt.want {
			t.Errorf("%s: filter %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestLogPercent(t *testing.T) {
	tests := []struct {
		name string
		obs  ir.Observability
		al   *ir.RouteAccessLog
		want float64
	}{
		{"default", ir.Observability{}, nil, 100},
		{"policy-wide", ir.Observability{AccessLogPercent: 20}, nil, 20},
		{"route share wins", ir.Observability{AccessLogPercent: 20}, &ir.RouteAccessLog{Percent: 100}, 100},
		{"route off", ir.Observability{}, &ir.RouteAccessLog{Off: true}, 0},
		{"all off", ir.Observability{AccessLogOff: true}, &ir.RouteAccessLog{Percent: 50}, 0},
	}
	for _, tt := range tests {
		if got := tt.obs.LogPercent(&ir.Route{AccessLog: tt.al}); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAccessLogFieldsDocumented keeps the access-log reference
// (docs/reference/access-log.md) in step with the format: every key must
// appear there in backticks.
func TestAccessLogFieldsDocumented(t *testing.T) {
	const page = "../../docs/reference/access-log.md"
	doc, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(doc, []byte("# Access log")) {
		t.Fatalf("%s does not start with \"# Access log\"", page)
	}
	for key := range AccessLogFields() {
		if !bytes.Contains(doc, []byte("`"+key+"`")) {
			t.Errorf("access-log key %q is not documented in %s", key, page)
		}
	}
}

// TestRouteStatsOff: routes carry their policy name as stat_prefix (per-route
// stats) unless the policy turned route stats off.
func TestRouteStatsOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		tc := loadCase(t, "minimal")
		tc.Config.Observability.RouteStatsOff = off
		r, err := Translate(&tc.Config, tc.Gateway, tc.options())
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(r); err != nil {
			t.Fatal(err)
		}
		want := "web"
		if off {
			want = ""
		}
		for _, rc := range r.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, rt := range vh.GetRoutes() {
					if rt.GetStatPrefix() != want {
						t.Errorf("routeStatsOff=%v: route %q stat_prefix = %q, want %q", off, rt.GetName(), rt.GetStatPrefix(), want)
					}
				}
			}
		}
	}
}
