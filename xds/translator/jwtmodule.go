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

// The module path of native JWT routes (Options.EnvoyModule): one filter,
// Tollgate's Envoy dynamic module (envoymodule/, contract in
// extauthz/envoymod), replaces jwt_authn, the JWT identity script,
// header_to_metadata and rbac on the routes that would take them. It
// decides with the ext_authz service's own code (extauthz.Local): the
// same refusals, identity headers and metadata (the ext_authz
// namespace, which rate limits and access logs read), and keeps verified
// tokens in a bounded C table until their exp, so a repeated token never
// leaves C. Native key and mixed routes keep their filters.

// moduleFilterName names the module's HTTP filter (and its per-route
// configurations) in the connection manager.
const moduleFilterName = "tollgate.identity_module"

// moduleChargeFilterName names the module's second instance, the charger
// (envoymod.FilterConfig.Charge), after the ext_authz filter, and its
// per-route configurations (jwtmodule_charge.go). Not under
// moduleKeysFilterPrefix: its config is inline, never served over ECDS.
const moduleChargeFilterName = "tollgate.module_charge"

// jwtModule is the module of one gateway.
type jwtModule struct {
	cfg *ir.Config
	lib envoy.DynamicModule
	fc  envoymod.FilterConfig // without the exceptions table (fc.Keys holds none)
	// name names the filter, its per-route configs and, when the module
	// decides signed keys, its ECDS resource (jwtmodule_keys.go).
	name   string
	config string // the FilterConfig JSON
	// quota is set when the module enforces some routes' rate limits
	// (jwtmodule_limits.go).
	quota *envoymod.Quota
}

// newJWTModule returns the module filter's configuration for cfg, or nil
// when path is "" (jwt_authn decides native JWT routes); quota, when not
// nil, has the module enforce the rate limits of the routes whose limits
// it can hold (moduleTakesLimits); keys, when not nil, has it decide
// signed API keys (jwtmodule_keys.go).
func newJWTModule(cfg *ir.Config, path, keyHeader string, quota *envoymod.Quota, keys *envoymod.Keys) (*jwtModule, error) {
	if path == "" {
		return nil, nil
	}
	fc := envoymod.FilterConfig{
		Contract:        envoymod.ContractID(),
		JWT:             cfg.Auth.JWT,
		IdentityHeaders: identityHeadersOrDefault(cfg.Auth.IdentityHeaders),
		KeyHeader:       keyHeader,
		CacheSize:       jwtCacheSize,
		CacheMaxTTL:     envoymod.DefaultCacheMaxTTL,
		Quota:           quota,
		Keys:            keys,
	}
	b, err := json.Marshal(fc)
	if err != nil {
		return nil, fmt.Errorf("envoy module config: %w", err)
	}
	m := &jwtModule{cfg: cfg, lib: envoy.DynamicModule{Path: path, Filter: envoymod.FilterName}, fc: fc,
		name: moduleFilterName, config: string(b), quota: quota}
	if keys != nil {
		m.name = moduleKeysFilterName(b)
	}
	return m, nil
}

// filter is the module's HTTP filter: served over ECDS when it decides
// signed keys.
func (m *jwtModule) filter() (*hcmv3.HttpFilter, error) {
	if m.fc.Keys != nil {
		return m.discoveredFilter()
	}
	return envoy.DynamicModuleFilter(m.name, m.lib, m.config)
}

// configureRoute hands r to the module: its requirement as the ext_authz
// service would get it (the rate limits are never taken there), its
// limits when the module enforces them, and checkLimits when the ext_authz
// Check takes them for the opaque keys the module passes (exact mode:
// RouteConfig.CheckLimits).
func (m *jwtModule) configureRoute(er *routev3.Route, r ir.Route, checkLimits bool) error {
	if err := checkListValues(r.Auth); err != nil {
		return err
	}
	rc := envoymod.RouteConfig{Contract: envoymod.ContractID(), Extensions: contextExtensions(r.Auth, r.Name, false),
		CheckLimits: checkLimits}
	if m.takesLimits(r) {
		rc.Limits = moduleRouteLimits(m.cfg, r)
	}
	b, err := json.Marshal(rc)
	if err != nil {
		return fmt.Errorf("route %q: envoy module config: %w", r.Name, err)
	}
	pr, err := envoy.DynamicModulePerRoute(m.lib, string(b))
	if err != nil {
		return fmt.Errorf("route %q: envoy module config: %w", r.Name, err)
	}
	return envoy.SetRouteFilterConfig(er, m.name, pr)
}

// takesLimits reports whether the module enforces the limits of r, a
// route it decides.
func (m *jwtModule) takesLimits(r ir.Route) bool {
	return m != nil && m.quota != nil && moduleTakesLimits(m.cfg, r)
}
