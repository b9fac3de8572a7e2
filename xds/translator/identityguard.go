package translator

import (
	"cmp"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// Keys of the ext_authz service's dynamic metadata (namespace
// envoy.ExtAuthzName) that hold the identity headers' values, exactly as
// the service sets the headers (extauthz/response.go).
const (
	metadataUserID = "user_id"
	metadataRoles  = "roles"
	metadataTenant = "tenant"
)

// identityGuard is the header mutation that runs right after the Lua
// filter, on gateways with a Lua route: it removes every identity header a
// script may have set and sets each again from what ext_authz decided, so
// that no script can forge an identity, whatever the policy's textual
// check missed. Routes without a script turn it off: nothing between the
// identity strip and the guard but Lua can set those headers.
type identityGuard struct {
	enabled bool
	sources []envoy.IdentityHeaderSource
}

func newIdentityGuard(h ir.IdentityHeaders, lua bool) *identityGuard {
	if !lua {
		return &identityGuard{}
	}
	return &identityGuard{enabled: true, sources: []envoy.IdentityHeaderSource{
		{Header: cmp.Or(h.UserID, "x-user-id"), MetadataKey: metadataUserID},
		{Header: cmp.Or(h.Roles, "x-user-roles"), MetadataKey: metadataRoles},
		{Header: cmp.Or(h.Tenant, "x-tenant-id"), MetadataKey: metadataTenant},
		{Header: cmp.Or(h.Tier, "x-consumer-tier"), MetadataKey: metadataTier},
	}}
}

// httpFilters returns the guard when enabled: append it right after Lua.
func (g *identityGuard) httpFilters() ([]*hcmv3.HttpFilter, error) {
	if !g.enabled {
		return nil, nil
	}
	f, err := envoy.IdentityGuardFilter(g.sources)
	if err != nil {
		return nil, err
	}
	return []*hcmv3.HttpFilter{f}, nil
}

// configureRoute turns the guard off on a route without a Lua script.
func (g *identityGuard) configureRoute(er *routev3.Route, r ir.Route) error {
	if !g.enabled || r.HTTP.Lua != "" {
		return nil
	}
	return envoy.SetRouteFilterConfig(er, envoy.IdentityGuardName, envoy.FilterDisabled())
}
