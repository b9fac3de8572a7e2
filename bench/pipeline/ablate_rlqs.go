package main

import (
	"fmt"
	"regexp"
	"slices"
)

// Variants that change the quota filters' configuration rather than remove
// a filter: where rate_limit_quota and its set_filter_state spend their
// instructions per request (bench/README.md, "RLQS per request").

const (
	rlqsName  = "envoy.filters.http.rate_limit_quota"
	stateName = "tollgate.quota_state"
	// backstopName is the backstop's first filter.
	backstopName = "envoy.filters.http.local_ratelimit"
)

// rlqsVariants are the quota variants on the JWT route (and two on the
// signed-key route).
func rlqsVariants() []variant {
	return []variant{
		{"rlqs-off-route", "rate_limit_quota disabled on the route (FilterConfig disabled)", "/jwt", func(h map[string]any) {
			disableOnRoute(h, "jwt", rlqsName)
		}},
		{"rlqs-static-id", "bucket id without its filter-state value (consumer a static string)", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) { bucketID(b)["consumer"] = map[string]any{"string_value": "x"} })
		}},
		{"rlqs-id-consumer", "bucket id with the consumer only (no static entries; the server answers no such bucket)", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) {
				for k := range bucketID(b) {
					if k != "consumer" {
						delete(bucketID(b), k)
					}
				}
			})
		}},
		{"rlqs-id-split", "bucket id's static part as separate kind, route and tier entries (the earlier form)", "/jwt", func(h map[string]any) {
			splitID(routeBuckets(h, "jwt"), "jwt")
		}},
		{"key-rlqs-id-split", "signed-key route, bucket id in the earlier form (as rlqs-id-split)", "/key", func(h map[string]any) {
			splitID(routeBuckets(h, "key"), "key")
		}},
		{"rlqs-id-header", "bucket id's consumer from the x-user-id header instead of filter state", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) {
				bucketID(b)["consumer"] = map[string]any{"custom_value": headerInput("x-user-id")}
			})
		}},
		{"rlqs-flat", "matcher: route map straight to the bucket (no consumer predicate, no tier map)", "/jwt", func(h map[string]any) {
			b := jwtBuckets(h)[1]
			routeMap(h)["jwt"] = map[string]any{"action": map[string]any{"name": "bucket", "typed_config": b}}
		}},
		{"rlqs-exact-consumer", "consumer presence by exact-map on_no_match instead of the .+ regex predicate", "/jwt", func(h map[string]any) {
			m := routeMap(h)["jwt"].(map[string]any)["matcher"].(map[string]any)
			fm := list(get(m, "matcher_list", "matchers"))[0].(map[string]any)
			pred := get(fm, "predicate", "single_predicate").(map[string]any)
			// a present consumer goes to the tier map: the empty value
			// (absent is no match) goes to the deny bucket.
			m["matcher_tree"] = map[string]any{"input": pred["input"], "exact_match_map": map[string]any{"map": map[string]any{
				"": m["on_no_match"]}}}
			m["on_no_match"] = fm["on_match"]
			delete(m, "matcher_list")
		}},
		{"rlqs-nomatch", "the route matches no bucket (RLQS passes it after matching)", "/jwt", func(h map[string]any) {
			delete(routeMap(h), "jwt")
		}},
		{"rlqs-noid", "the bucket id cannot be built (RLQS passes it after matching and building)", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) {
				bucketID(b)["consumer"] = map[string]any{"custom_value": map[string]any{"name": "filter_state:none", "typed_config": map[string]any{
					"@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput", "key": "tollgate.rlq.none"}}}
			})
		}},
		{"rlqs-unlimited", "the bucket is an unlimited one (blanket ALLOW_ALL, no token bucket)", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) {
				id := bucketID(b)
				if _, ok := id["bucket"]; ok {
					id["bucket"] = map[string]any{"string_value": "unlimited//jwt"}
				} else {
					id["kind"] = map[string]any{"string_value": "unlimited"}
				}
			})
		}},
		{"rlqs-no-deny-settings", "the bucket without deny_response_settings (status, body, seven headers)", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) { delete(b, "deny_response_settings") })
		}},
		{"rlqs-min-settings", "the bucket with its id builder and reporting interval only", "/jwt", func(h map[string]any) {
			editBuckets(h, func(b map[string]any) {
				for _, k := range []string{"deny_response_settings", "expired_assignment_behavior", "no_assignment_behavior"} {
					delete(b, k)
				}
			})
		}},
		{"state-jwt-only", "set_filter_state writes route and consumer only (no tier, no client address)", "/jwt", func(h map[string]any) {
			keepState(h, "tollgate.rlq.route", "tollgate.rlq.consumer")
		}},
		{"-rlqs-keepstate", "no rate_limit_quota, set_filter_state kept", "/jwt", func(h map[string]any) { dropFilter(h, rlqsName) }},
		{"+backstop-idle4", "four more backstop filters that the route leaves idle (no per-route config)", "/jwt", func(h map[string]any) {
			idleBackstops(h, 4, false)
		}},
		{"+backstop-idle4-off", "four more backstop filters, disabled by default (HttpFilter.disabled), not enabled by the route", "/jwt", func(h map[string]any) {
			idleBackstops(h, 4, true)
		}},
		{"key-rlqs-off-route", "signed-key route, rate_limit_quota disabled on the route", "/key", func(h map[string]any) {
			disableOnRoute(h, "key", rlqsName)
		}},
		{"key-lua-nometa", "signed-key route, key script without its identity metadata writes (before the metadata filter: method, user_id, roles, tenant, tier; after: method)", "/key", func(h map[string]any) {
			editKeyLua(h, func(src string) string {
				return regexp.MustCompile(`(?m)^  m:set\(AUTHZ, "(method|user_id|roles|tenant|tier)".*$`).ReplaceAllString(src, "")
			})
		}},
		{"key-method-h2m", "signed-key route, method from the identity metadata filter instead of the key script", "/key", func(h map[string]any) {
			keyMethodFromFilter(h, "")
		}},
		{"key-method-h2m-md", "key-method-h2m, the key script reading its route metadata once (how it would tell a mixed route)", "/key", func(h map[string]any) {
			keyMethodFromFilter(h, "  local mixed = h:metadata():get(\"challenge\")\n")
		}},
	}
}

// splitID writes the static part of the buckets' ids as separate kind,
// route and tier entries (the form before ir.BucketStatic).
func splitID(buckets []map[string]any, route string) {
	for _, b := range buckets {
		id := bucketID(b)
		delete(id, "bucket")
		for k, v := range map[string]string{"kind": "consumer", "route": route, "tier": "bench"} {
			id[k] = map[string]any{"string_value": v}
		}
	}
}

// idleBackstops adds n local_ratelimit filters after the backstop's
// first, as the translator adds for a route of the gateway with more
// ranks: disabled unless a route configures them, which none does here;
// off: disabled by default in the filter chain (HttpFilter.disabled), so
// Envoy does not create them for a route that does not enable them.
func idleBackstops(h map[string]any, n int, off bool) {
	fs := list(h["http_filters"])
	for i, f := range fs {
		if get(f, "name") != backstopName {
			continue
		}
		idle := make([]any, n)
		for j := range idle {
			idle[j] = map[string]any{"name": fmt.Sprintf("%s.idle%d", backstopName, j), "typed_config": get(f, "typed_config"), "disabled": off}
		}
		h["http_filters"] = slices.Concat(fs[:i+1], idle, fs[i+1:])
		return
	}
}

// disableOnRoute turns filter off on the named route.
func disableOnRoute(h map[string]any, name, filter string) {
	r := route(h, name)
	tpfc, _ := r["typed_per_filter_config"].(map[string]any)
	if tpfc == nil {
		tpfc = map[string]any{}
		r["typed_per_filter_config"] = tpfc
	}
	tpfc[filter] = map[string]any{"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true}
}

// routeMap is the RLQS bucket matcher's map from route name to matcher.
func routeMap(h map[string]any) map[string]any {
	for _, f := range list(h["http_filters"]) {
		if get(f, "name") == rlqsName {
			return get(f, "typed_config", "bucket_matchers", "matcher_tree", "exact_match_map", "map").(map[string]any)
		}
	}
	return nil
}

// jwtBuckets are the settings of the JWT route's buckets of a consumer:
// the bench tier's and the default tier's (a copy of the same settings,
// which tokens without a tier claim reach).
func jwtBuckets(h map[string]any) []map[string]any { return routeBuckets(h, "jwt") }

// routeBuckets are the settings of the named route's consumer buckets (as
// jwtBuckets).
func routeBuckets(h map[string]any, name string) []map[string]any {
	m := routeMap(h)[name]
	fm := list(get(m, "matcher", "matcher_list", "matchers"))[0]
	tiers := get(fm, "on_match", "matcher").(map[string]any)
	return []map[string]any{
		get(tiers, "matcher_tree", "exact_match_map", "map", "bench", "action", "typed_config").(map[string]any),
		get(tiers, "on_no_match", "action", "typed_config").(map[string]any),
	}
}

// editBuckets applies edit to each of the JWT route's consumer buckets.
func editBuckets(h map[string]any, edit func(settings map[string]any)) {
	for _, b := range jwtBuckets(h) {
		edit(b)
	}
}

func bucketID(settings map[string]any) map[string]any {
	return get(settings, "bucket_id_builder", "bucket_id_builder").(map[string]any)
}

func headerInput(name string) map[string]any {
	return map[string]any{"name": "header:" + name, "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput", "header_name": name}}
}

// keepState keeps only the named objects of the quota set_filter_state.
func keepState(h map[string]any, keys ...string) {
	for _, f := range list(h["http_filters"]) {
		if get(f, "name") != stateName {
			continue
		}
		tc := get(f, "typed_config").(map[string]any)
		var kept []any
		for _, v := range list(tc["on_request_headers"]) {
			for _, k := range keys {
				if get(v, "object_key") == k {
					kept = append(kept, v)
				}
			}
		}
		tc["on_request_headers"] = kept
	}
}

// editKeyLua edits the signed-key identity script's source.
func editKeyLua(hcm map[string]any, edit func(string) string) {
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") == "tollgate.key_identity" {
			m := get(f, "typed_config", "source_codes", "key_identity").(map[string]any)
			m["inline_string"] = edit(m["inline_string"].(string))
		}
	}
}

// keyMethodFromFilter removes the key script's method write (replacing it
// with lua) and has the identity metadata filter write the method of the
// signed-key route from the user id header.
func keyMethodFromFilter(h map[string]any, lua string) {
	editKeyLua(h, func(src string) string {
		return regexp.MustCompile(`(?m)^  m:set\(AUTHZ, "method".*\n`).ReplaceAllString(src, lua)
	})
	cfg := perFilter(route(h, "key"), "tollgate.identity_metadata")
	rule := map[string]any{"header": "x-user-id", "on_header_present": map[string]any{
		"metadata_namespace": "envoy.filters.http.ext_authz", "key": "method", "value": "apiKey", "type": "STRING"}}
	cfg["request_rules"] = append([]any{rule}, list(cfg["request_rules"])...)
}
