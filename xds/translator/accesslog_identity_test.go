package translator

import (
	"slices"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestMetadataRoutes: the routes whose access log identity comes from
// ext_authz's metadata are those taking their limits in the Check, those
// accepting OAuth 2.0 and those with a Lua script; the others read the
// identity headers.
func TestMetadataRoutes(t *testing.T) {
	limited := ir.RouteRateLimit{Enabled: true}
	routes := []ir.Route{
		{Name: "native-jwt", Auth: ir.RouteAuth{Methods: []string{ir.MethodJWT}}, RateLimit: limited},
		{Name: "check-limits", Auth: ir.RouteAuth{Methods: []string{ir.MethodAPIKey, ir.MethodJWT}}, RateLimit: limited},
		{Name: "authz-nolimit", Auth: ir.RouteAuth{Methods: []string{ir.MethodAPIKey, ir.MethodJWT}}},
		{Name: "oauth", Auth: ir.RouteAuth{Methods: []string{ir.MethodOAuth2}}},
		{Name: "lua", Auth: ir.RouteAuth{Public: true}, HTTP: &ir.RouteHTTP{Lua: "function envoy_on_request(h) end"}},
		{Name: "public", Auth: ir.RouteAuth{Public: true}, RateLimit: limited},
	}
	gw := &ir.Gateway{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: routes}}}
	native := &nativeJWT{enabled: true, cfg: &ir.Config{Auth: ir.Auth{JWT: []ir.JWTProvider{{Name: "corp", Issuer: "i", JWKS: "{}", ClockSkew: 60e9}}}}}
	tests := []struct {
		name  string
		quota bool
		want  []string
	}{
		{"exact mode", false, []string{"check-limits", "lua", "oauth"}},
		{"quota mode: no limits in the Check", true, []string{"lua", "oauth"}},
	}
	for _, tt := range tests {
		a := &authz{enabled: true, quota: tt.quota, native: native}
		if got := metadataRoutes(gw, a); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestJSONAccessLogsSplit: two logs whose CEL selections are exact
// complements (no route, or a metadata route, vs the rest), each also
// narrowed by the sampling filter; the first reads the identity from the
// identity headers, the second from ext_authz's metadata.
func TestJSONAccessLogsSplit(t *testing.T) {
	h := ir.IdentityHeaders{UserID: "x-uid", Roles: "x-r", Tenant: "x-t", Tier: "x-tier"}
	sample := &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{RuntimeFilter: &accesslogv3.RuntimeFilter{RuntimeKey: "k"}}}
	tests := []struct {
		name     string
		md       []string
		filter   *accesslogv3.AccessLogFilter
		edge, mt string
	}{
		{"no metadata route", nil, nil, "has(xds.route_name)", "!has(xds.route_name)"},
		{"metadata routes, sampled", []string{"a", "b"}, sample,
			`has(xds.route_name) && !(xds.route_name in ["a", "b"])`, `!has(xds.route_name) || xds.route_name in ["a", "b"]`},
	}
	for _, tt := range tests {
		logs, err := jsonAccessLogs("", AccessLogFields(), h, tt.md, tt.filter)
		if err != nil || len(logs) != 2 {
			t.Fatalf("%s: %d logs, %v", tt.name, len(logs), err)
		}
		for i, want := range []string{tt.edge, tt.mt} {
			sel := logs[i].GetFilter()
			if tt.filter != nil {
				and := sel.GetAndFilter().GetFilters()
				if len(and) != 2 || and[1].GetRuntimeFilter().GetRuntimeKey() != "k" {
					t.Fatalf("%s: log %d filter %v, want the selection and the sampling", tt.name, i, sel)
				}
				sel = and[0]
			}
			cel := &celv3.ExpressionFilter{}
			if err := sel.GetExtensionFilter().GetTypedConfig().UnmarshalTo(cel); err != nil || cel.GetExpression() != want {
				t.Errorf("%s: log %d selects %q (%v), want %q", tt.name, i, cel.GetExpression(), err, want)
			}
		}
		fields := func(i int) map[string]any {
			so := &streamv3.StdoutAccessLog{}
			if err := logs[i].GetTypedConfig().UnmarshalTo(so); err != nil {
				t.Fatal(err)
			}
			return so.GetLogFormat().GetJsonFormat().AsMap()
		}
		edge, md := fields(0), fields(1)
		for k, want := range map[string]string{"user_id": "%REQ(x-uid)%", "consumer": "%REQ(x-uid)%", "tenant": "%REQ(x-t)%", "tier": "%REQ(x-tier)%"} {
			if edge[k] != want || !strings.Contains(md[k].(string), "DYNAMIC_METADATA(envoy.filters.http.ext_authz:") {
				t.Errorf("%s: %s from %v (edge) and %v (metadata), want %s and ext_authz's metadata", tt.name, k, edge[k], md[k], want)
			}
		}
		if len(edge) != len(md) || edge["auth_method"] != md["auth_method"] {
			t.Errorf("%s: the logs differ beyond the identity: %v vs %v", tt.name, edge, md)
		}
	}
}
