package translator

import (
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestPlainRoutesShareActions checks that the routes whose action depends
// on their backend and timeout alone share one action per backend and
// timeout, and that a route whose action is its own (rate limits added
// later, a rewrite, a retry) gets an action nothing else holds.
func TestPlainRoutesShareActions(t *testing.T) {
	tc := loadCase(t, "minimal")
	tc.RateLimitAddress = "127.0.0.1:8081"
	base := *firstRoute(&tc.Config)
	variant := func(name, prefix string, change func(r *ir.Route)) ir.Route {
		r := base
		r.Name, r.Match = name, ir.Match{PathPrefix: prefix}
		if change != nil {
			change(&r)
		}
		return r
	}
	vh := &tc.Config.Gateways[0].VirtualHosts[0]
	vh.Routes = []ir.Route{
		variant("a", "/a", nil),
		variant("b", "/b", nil),
		variant("longer", "/c", func(r *ir.Route) { r.Timeout = base.Timeout + time.Second }),
		variant("limited", "/d", func(r *ir.Route) { r.RateLimit.Enabled = true }),
		variant("rewritten", "/e", func(r *ir.Route) { r.RewritePrefix, r.PrefixRewrite = true, "/x" }),
		variant("retried", "/f", func(r *ir.Route) { r.Retry = &ir.Retry{On: []string{"5xx"}, Attempts: 2} }),
		variant("host", "/g", func(r *ir.Route) { r.EditHTTP().HostRewrite = "h.example" }),
		variant("a2", "/h", nil),
		variant("longer2", "/i", func(r *ir.Route) { r.Timeout = base.Timeout + time.Second }),
	}
	res, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]*routev3.RouteAction{}
	holders := map[*routev3.RouteAction]int{}
	for _, rc := range res.Routes {
		for _, v := range rc.GetVirtualHosts() {
			for _, r := range v.GetRoutes() {
				actions[r.GetName()] = r.GetRoute()
				holders[r.GetRoute()]++
			}
		}
	}
	if actions["a"] != actions["b"] || actions["a"] != actions["a2"] || actions["longer"] != actions["longer2"] {
		t.Error("plain routes with the same backend and timeout do not share their action")
	}
	if actions["a"] == actions["longer"] {
		t.Error("routes with different timeouts share an action")
	}
	if len(actions["limited"].GetRateLimits()) == 0 {
		t.Error("the rate-limited route's action has no rate limits")
	}
	for _, own := range []string{"limited", "rewritten", "retried", "host"} {
		if a := actions[own]; a == nil || holders[a] != 1 {
			t.Errorf("route %s: action shared with %d routes, want its own", own, holders[a])
		}
	}
}
