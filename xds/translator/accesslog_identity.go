package translator

import (
	"maps"
	"slices"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// The access log reads the identity (user_id, consumer, tenant, tier) from
// one of two sources, chosen per request by route:
//
//   - the identity headers, on routes where they always hold what the
//     request's authentication decided: the edge's first filter removed
//     the client's copies, and only the authentication filters (ext_authz's
//     OK response, the native JWT and key identity scripts) set them, with
//     the values they publish as ext_authz's dynamic metadata. On such a
//     route the consumer is the user id (true of JWTs and API keys).
//   - ext_authz's dynamic metadata, as before, for requests without a
//     route (Envoy answered them before any filter ran, e.g. a
//     path-normalisation redirect: the client's copies of the identity
//     headers are still in the request) and on metadataRoutes.
//
// Both give the same line; headers are far cheaper: Envoy 1.40 copies a
// request's whole dynamic metadata (the verified JWT payload included) for
// every %DYNAMIC_METADATA(...)% field of a JSON log (~15,000 instructions
// each on a JWT route), while %REQ(...)% is a header lookup.

// EdgeAccessLogFields is fields (AccessLogFields) with the identity (but
// the auth method) read from the identity headers h (lower case, defaults
// filled).
func EdgeAccessLogFields(fields map[string]string, h ir.IdentityHeaders) map[string]string {
	f := maps.Clone(fields)
	f["user_id"] = "%REQ(" + h.UserID + ")%"
	f["consumer"] = "%REQ(" + h.UserID + ")%"
	f["tenant"] = "%REQ(" + h.Tenant + ")%"
	f["tier"] = "%REQ(" + h.Tier + ")%"
	return f
}

// metadataRoutes returns, sorted, the names of gw's routes whose identity
// the access log must read from ext_authz's metadata: routes that take
// their limits in the ext_authz Check (its 429 publishes the identity as
// metadata only, no header), routes accepting OAuth 2.0 tokens (their
// consumer is the client id, not the user) and routes with a Lua script
// (a script may answer before the identity guard restores the headers).
func metadataRoutes(gw *ir.Gateway, a *authz) []string {
	var out []string
	for _, vh := range gw.VirtualHosts {
		for _, r := range vh.Routes {
			if a.takesLimits(r) || slices.Contains(r.Auth.Methods, ir.MethodOAuth2) || r.HTTPRules().Lua != "" {
				out = append(out, r.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// jsonAccessLogs returns the gateway's JSON access logs, each narrowed by
// filter (nil: every request): one reading the identity headers for
// requests on a route outside mdRoutes, one reading ext_authz's metadata
// for the others (CEL on xds.route_name; the two selections are exact
// complements, so each request is logged once).
func jsonAccessLogs(path string, fields map[string]string, h ir.IdentityHeaders, mdRoutes []string, filter *accesslogv3.AccessLogFilter) ([]*accesslogv3.AccessLog, error) {
	edgeExpr, mdExpr := "has(xds.route_name)", "!has(xds.route_name)"
	if len(mdRoutes) > 0 {
		list := envoy.CELStringList(mdRoutes)
		edgeExpr += " && !(xds.route_name in " + list + ")"
		mdExpr += " || xds.route_name in " + list
	}
	edgeSel, err := envoy.AccessLogCELFilter(edgeExpr)
	if err != nil {
		return nil, err
	}
	mdSel, err := envoy.AccessLogCELFilter(mdExpr)
	if err != nil {
		return nil, err
	}
	edge, err := envoy.JSONAccessLog(path, EdgeAccessLogFields(fields, h), andFilter(edgeSel, filter))
	if err != nil {
		return nil, err
	}
	md, err := envoy.JSONAccessLog(path, fields, andFilter(mdSel, filter))
	if err != nil {
		return nil, err
	}
	return []*accesslogv3.AccessLog{edge, md}, nil
}

// andFilter is sel and, when set, filter.
func andFilter(sel, filter *accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	if filter == nil {
		return sel
	}
	return envoy.AccessLogAnd(sel, filter)
}
