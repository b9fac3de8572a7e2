package main

import (
	"encoding/json"
	"fmt"
)

// variant is one filter chain in front of the router.
type variant struct {
	name, what string
	alg        string // tokens sent: "ES256", "RS256" or "" (none)
	filters    func(c *creds) []any
}

func variants() []variant {
	dm := func(mode string) func(c *creds) []any {
		return func(c *creds) []any { return []any{moduleFilter(c, mode, false)} }
	}
	noMeta := func(mode string) func(c *creds) []any {
		return func(c *creds) []any {
			f := moduleFilter(c, mode, false)
			setSpec(f, "metadata", "none")
			return []any{f}
		}
	}
	return []variant{
		{"a", "no filter (floor)", "ES256", func(*creds) []any { return nil }},
		{"b0", "module, request-headers hook returns in C", "ES256", dm("c-empty")},
		{"b", "module, hook calls an empty Go function", "ES256", dm("go-empty")},
		{"c", "module: Tollgate Verifier cache hit, 4 headers, filter state, 1 metadata key", "ES256", dm("cache")},
		{"c-map", "as c, token-string map in front of the Verifier", "ES256", dm("map")},
		{"c-ctable", "as c, a C table token → identity consulted before Go (a hit stays in C)", "ES256", dm("ctable")},
		{"c-nometa", "as c without the dynamic-metadata write", "ES256", noMeta("cache")},
		{"c-map-nometa", "as c-map without the dynamic-metadata write", "ES256", noMeta("map")},
		{"d-es", "as c, cache off: ES256 signature verified every request", "ES256", dm("verify")},
		{"d-rs", "as c, cache off: RS256 signature verified every request", "RS256", dm("verify")},
		{"e1", "jwt_authn alone (jwt_cache_config, ES256)", "ES256", func(c *creds) []any { return []any{jwtAuthn(c)} }},
		{"e1-fresh-es", "jwt_authn alone, no cache: ES256 verified every request", "ES256", func(c *creds) []any {
			return []any{noCache(jwtAuthn(c))}
		}},
		{"e1-fresh-rs", "jwt_authn alone, no cache: RS256 verified every request", "RS256", func(c *creds) []any {
			return []any{noCache(jwtAuthn(c))}
		}},
		{"e2", "jwt_authn + Lua setting 4 headers from its payload", "ES256", func(c *creds) []any {
			return []any{jwtAuthn(c), luaFilter(luaHeaders)}
		}},
		{"e3", "jwt_authn + Lua (4 headers + 1 metadata key) + set_filter_state", "ES256", func(c *creds) []any {
			return []any{jwtAuthn(c), luaFilter(luaHeaders + luaMetadata), filterState()}
		}},
	}
}

func moduleFilter(c *creds, mode string, noRecover bool) map[string]any {
	spec, _ := json.Marshal(map[string]any{"mode": mode, "provider": c.provider(), "noRecover": noRecover})
	return map[string]any{"name": "tgspike", "typed_config": map[string]any{
		"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
		"dynamic_module_config": map[string]any{"name": "tgspike"},
		"filter_name":           "identity",
		"filter_config":         map[string]any{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": string(spec)},
	}}
}

// setSpec changes one field of a module filter's filter_config.
func setSpec(f map[string]any, key string, value any) {
	fc := f["typed_config"].(map[string]any)["filter_config"].(map[string]any)
	var m map[string]any
	_ = json.Unmarshal([]byte(fc["value"].(string)), &m)
	m[key] = value
	b, _ := json.Marshal(m)
	fc["value"] = string(b)
}

func jwtAuthn(c *creds) map[string]any {
	return map[string]any{"name": "envoy.filters.http.jwt_authn", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
		"providers": map[string]any{"idp": map[string]any{
			"issuer": issuer, "audiences": []string{audience},
			"local_jwks":          map[string]any{"inline_string": c.jwks},
			"payload_in_metadata": "jwt_payload", "forward": true,
			"jwt_cache_config": map[string]any{"jwt_cache_size": 100},
		}},
		"rules": []any{map[string]any{"match": map[string]any{"prefix": "/"}, "requires": map[string]any{"provider_name": "idp"}}},
	}}
}

func noCache(f map[string]any) map[string]any {
	p := f["typed_config"].(map[string]any)["providers"].(map[string]any)["idp"].(map[string]any)
	delete(p, "jwt_cache_config")
	return f
}

const luaHeaders = `
function envoy_on_request(h)
  local md = h:streamInfo():dynamicMetadata():get("envoy.filters.http.jwt_authn")
  local p = md and md["jwt_payload"]
  if p == nil or p["sub"] == nil then
    h:respond({[":status"] = "401"}, "")
    return
  end
  local uid = "idp:" .. p["sub"]
  local hs = h:headers()
  hs:replace("x-user-id", uid)
  hs:replace("x-user-roles", table.concat(p["roles"], ","))
  hs:replace("x-tenant-id", p["tenant"])
  hs:replace("x-consumer-tier", p["tier"])
`

const luaMetadata = `  h:streamInfo():dynamicMetadata():set("tollgate", "consumer", uid)
`

func luaFilter(body string) map[string]any {
	return map[string]any{"name": "envoy.filters.http.lua", "typed_config": map[string]any{
		"@type":               "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
		"default_source_code": map[string]any{"inline_string": body + "end\n"},
	}}
}

func filterState() map[string]any {
	return map[string]any{"name": "envoy.filters.http.set_filter_state", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
		"on_request_headers": []any{map[string]any{
			"object_key":    "tollgate.consumer",
			"factory_key":   "envoy.string",
			"format_string": map[string]any{"text_format_source": map[string]any{"inline_string": "%REQ(x-user-id)%"}},
		}},
	}}
}

// bootstrap is a static Envoy configuration: one listener whose only route
// proxies to the echo upstream through filters + router (with probe, the
// route also sends the consumer filter state upstream; smoke runs only).
func bootstrap(listen, admin, upstream int, filters []any, probe bool) ([]byte, error) {
	chain := append(filters, map[string]any{"name": "envoy.filters.http.router", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
	rt := map[string]any{"match": map[string]any{"prefix": "/"}, "route": map[string]any{"cluster": "up"}}
	if probe { // shows the upstream whether the consumer filter state reads back as a string
		rt["request_headers_to_add"] = []any{map[string]any{"header": map[string]any{
			"key": "x-filter-state", "value": "%FILTER_STATE(tollgate.consumer:PLAIN)%"}}}
	}
	addr := func(p int) map[string]any {
		return map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": p}}
	}
	cfg := map[string]any{
		"admin": map[string]any{"address": addr(admin)},
		"static_resources": map[string]any{
			"listeners": []any{map[string]any{"name": "in", "address": addr(listen),
				"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
					"name": "envoy.filters.network.http_connection_manager",
					"typed_config": map[string]any{
						"@type":       "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
						"stat_prefix": "in",
						"route_config": map[string]any{"virtual_hosts": []any{map[string]any{
							"name": "all", "domains": []string{"*"},
							"routes": []any{rt},
						}}},
						"http_filters": chain,
					}}}}}}},
			"clusters": []any{map[string]any{"name": "up", "type": "STATIC", "connect_timeout": "1s",
				"load_assignment": map[string]any{"cluster_name": "up", "endpoints": []any{map[string]any{
					"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": addr(upstream)}}}}}}}},
		},
	}
	b, err := json.MarshalIndent(cfg, "", " ")
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}
