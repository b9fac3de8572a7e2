package main

import (
	"encoding/json"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// dynmodVariants replace, on the JWT route, jwt_authn, the identity
// script, the header_to_metadata filter and rbac by the Go dynamic module
// of the bench/dynmod spike (a feasibility measurement, not a product
// path). Build the module and point Envoy at it first:
//
//	(cd bench/dynmod && go build -buildmode=c-shared -o /tmp/dynmod-lib/libtgspike.so ./module)
//	ENVOY_DYNAMIC_MODULES_SEARCH_PATH=/tmp/dynmod-lib GODEBUG=asyncpreemptoff=1 \
//	  go run ./bench/pipeline -ablate -callgrind -consumers 10 -variants dynmod,dynmod-full
//
// The module writes the identity headers and, in ext_authz's metadata
// namespace, what the rest of the chain reads (quota state, backstop,
// access log): consumer, method and tier ("min"), or also user_id, roles
// and tenant ("full", today's header_to_metadata set). It refuses a comma
// in Authorization and any x-api-key, as rbac does. The signed-key route
// loses jwt_authn in these variants (only /jwt is measured).
func dynmodVariants() []variant {
	v := func(name, what, mode, md string) variant {
		return variant{name, what, "/jwt", func(h map[string]any) { useModule(h, mode, md, "") }}
	}
	return []variant{
		v("dynmod", "module instead of jwt_authn+script+h2m+rbac; verification cache; metadata consumer/method/tier", "cache", "min"),
		v("dynmod-full", "as dynmod, metadata as today (6 keys)", "cache", "full"),
		v("dynmod-map", "as dynmod, token-string map in front of the cache", "map", "min"),
		v("dynmod-ctable", "as dynmod, a C table token → identity consulted before Go: a hit never enters Go", "ctable", "min"),
		v("dynmod-verify", "as dynmod, no cache: RS256 verified every request", "verify", "min"),
		{"dynmod-map-state", "as dynmod-map, the module writes the RLQS consumer filter state (quota_state no longer formats it)", "/jwt",
			func(h map[string]any) {
				useModule(h, "map", "min", "tollgate.rlq.consumer")
				dropStateValue(h, "tollgate.rlq.consumer")
			}},
		{"dynmod-map-nostate", "control for dynmod-map-state: nobody writes the consumer filter state (expect 429s)", "/jwt",
			func(h map[string]any) {
				useModule(h, "map", "min", "")
				dropStateValue(h, "tollgate.rlq.consumer")
			}},
	}
}

// useModule puts the module where jwt_authn was and drops the filters it
// replaces. The module runs on every route (Envoy 1.40 refuses an empty
// per-route FilterConfig that would enable it on /jwt only, and a
// per-route module config needs the per-route hooks): only /jwt is
// measured, other routes answer 401 in these variants.
func useModule(hcm map[string]any, mode, metadata, stateKey string) {
	var chain []any
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") == "envoy.filters.http.jwt_authn" {
			chain = append(chain, moduleFilter(f.(map[string]any), mode, metadata, stateKey))
		}
		chain = append(chain, f)
	}
	hcm["http_filters"] = chain
	for _, name := range []string{"envoy.filters.http.jwt_authn", "tollgate.jwt_identity", "tollgate.identity_metadata", "envoy.filters.http.rbac"} {
		dropFilter(hcm, name)
	}
}

// moduleFilter is the module filter verifying the tokens of jwt_authn's
// "corp" provider, as the identity script maps their claims.
func moduleFilter(jwtAuthn map[string]any, mode, metadata, stateKey string) map[string]any {
	p, _ := get(jwtAuthn, "typed_config", "providers", "corp").(map[string]any)
	var auds []string
	for _, a := range list(p["audiences"]) {
		auds = append(auds, a.(string))
	}
	jwks, _ := get(p, "local_jwks", "inline_string").(string)
	iss, _ := p["issuer"].(string)
	prov := ir.JWTProvider{Name: "corp", Namespace: "corp", Issuer: iss, Audiences: auds, JWKS: jwks,
		Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, MaxLifetime: 24 * time.Hour,
		Claims: ir.ClaimMap{UserID: "sub", Roles: "roles"}}
	spec, _ := json.Marshal(map[string]any{"mode": mode, "provider": prov, "metadata": metadata,
		"metadataNamespace": "envoy.filters.http.ext_authz", "filterStateKey": stateKey, "denyAmbiguous": true})
	return map[string]any{"name": "tgspike", "typed_config": map[string]any{
		"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
		"dynamic_module_config": map[string]any{"name": "tgspike"},
		"filter_name":           "identity",
		"filter_config":         map[string]any{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": string(spec)},
	}}
}

// dropStateValue removes the value written to key from the quota state
// filter (the module writes it). Without it the RLQS matcher sends the
// request to the deny bucket: a 429, which the run reports.
func dropStateValue(hcm map[string]any, key string) {
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") != "tollgate.quota_state" {
			continue
		}
		tc := get(f, "typed_config").(map[string]any)
		var kept []any
		for _, v := range list(tc["on_request_headers"]) {
			if get(v, "object_key") != key {
				kept = append(kept, v)
			}
		}
		tc["on_request_headers"] = kept
	}
}
