package translator

import (
	"encoding/json"
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// The charger: the limits of the opaque API keys the module passes. On a
// route whose signed keys the module decides and whose limits it holds
// (moduleCharges), an opaque key passes the module undecided and is
// decided by the ext_authz filter; a second instance of the module's
// filter, after ext_authz (moduleChargeFilterName, envoymod.FilterConfig.
// Charge), charges each request ext_authz admitted to the route's bucket
// of the identity ext_authz wrote in its dynamic metadata (consumer,
// tier), in the process-wide bucket table the first instance charges,
// reported over the same RLQS stream. A request the first instance
// decided carries its native marker and passes the charger untouched (the
// first instance charged it). So a consumer's signed and opaque keys draw
// on one bucket per Envoy, and the Check takes no limit there (no
// rate_limit=exact: authz.takesLimits), costing no Redis script per
// request. The buckets are the first instance's (moduleRouteLimits): the
// IR names them once.

// moduleCharges reports whether the charger takes route r's limits for
// the requests ext_authz admits: the module decides r's signed keys and
// holds r's limits.
func (n *nativeJWT) moduleCharges(r ir.Route) bool {
	return n.moduleKeyRoute(r) && n.moduleLimits(r)
}

// anyModuleCharges reports whether a route of gw is charged by the
// charger (the gateway's filter chain then has it).
func (n *nativeJWT) anyModuleCharges(gw *ir.Gateway) bool {
	for _, vh := range gw.VirtualHosts {
		for _, r := range vh.Routes {
			if n.moduleCharges(r) {
				return true
			}
		}
	}
	return false
}

// chargeFilters returns the charger filter when the gateway has a route
// it charges (nil otherwise): it goes right after the ext_authz filter.
func (n *nativeJWT) chargeFilters() ([]*hcmv3.HttpFilter, error) {
	if !n.charges {
		return nil, nil
	}
	b, err := json.Marshal(envoymod.FilterConfig{Contract: envoymod.ContractID(), Charge: true, Quota: n.module.quota})
	if err != nil {
		return nil, fmt.Errorf("envoy module charger config: %w", err)
	}
	f, err := envoy.DynamicModuleFilter(moduleChargeFilterName, n.module.lib, string(b))
	if err != nil {
		return nil, fmt.Errorf("envoy module charger config: %w", err)
	}
	return []*hcmv3.HttpFilter{f}, nil
}

// configureChargeRoute gives the charger route r's limits, the first
// instance's buckets.
func (n *nativeJWT) configureChargeRoute(er *routev3.Route, r ir.Route) error {
	rc := envoymod.RouteConfig{Contract: envoymod.ContractID(), Extensions: map[string]string{"route": r.Name},
		Limits: moduleRouteLimits(n.cfg, r)}
	b, err := json.Marshal(rc)
	if err != nil {
		return fmt.Errorf("route %q: envoy module charger config: %w", r.Name, err)
	}
	pr, err := envoy.DynamicModulePerRoute(n.module.lib, string(b))
	if err != nil {
		return fmt.Errorf("route %q: envoy module charger config: %w", r.Name, err)
	}
	return envoy.SetRouteFilterConfig(er, moduleChargeFilterName, pr)
}
