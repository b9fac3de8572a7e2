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

// identityGuard is, on gateways with a Lua route, a set_filter_state filter
// right before the Lua filter that snapshots ext_authz's identity metadata
// into filter state (which Lua cannot write, while it can write any dynamic
// metadata), and a header mutation right after the Lua filter that removes
// every identity header a script may have set and sets each again from the
// snapshot: no script can forge an identity, whatever the policy's textual
// check missed. Routes without a script turn both off: nothing between the
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

// around returns, when enabled, the snapshot filter to put right before the
// Lua filter and the guard to put right after it.
func (g *identityGuard) around() (before, after []*hcmv3.HttpFilter, err error) {
	if !g.enabled {
		return nil, nil, nil
	}
	snap, err := envoy.IdentitySnapshotFilter(g.sources)
	if err != nil {
		return nil, nil, err
	}
	guard, err := envoy.IdentityGuardFilter(g.sources)
	if err != nil {
		return nil, nil, err
	}
	return []*hcmv3.HttpFilter{snap}, []*hcmv3.HttpFilter{guard}, nil
}

// configureRoute turns the snapshot and the guard off on a route without a
// Lua script.
func (g *identityGuard) configureRoute(er *routev3.Route, r ir.Route) error {
	if !g.enabled || r.HTTPRules().Lua != "" {
		return nil
	}
	for _, name := range []string{envoy.IdentitySnapshotName, envoy.IdentityGuardName} {
		if err := envoy.SetRouteFilterConfig(er, name, envoy.FilterDisabled()); err != nil {
			return err
		}
	}
	return nil
}
