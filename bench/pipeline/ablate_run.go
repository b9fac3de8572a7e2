package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// variant is one configuration of the ablation: the quota Envoy's static
// configuration changed by edit, measured on path.
type variant struct {
	name, what, path string
	edit             func(hcm map[string]any)
}

// variants are the ablation's configurations: baseVariants, then the
// quota filters' (rlqsVariants), those of the quota stack run with
// Tollgate's Envoy module (moduleVariants, -module), then the exact
// stack's (exactVariants).
func variants() []variant {
	return append(append(baseVariants(), rlqsVariants()...), append(moduleVariants(), exactVariants()...)...)
}

// baseVariants each remove one feature from the full configuration;
// "plain" is the full configuration on the public route (the floor),
// "none" the JWT route as configured.
func baseVariants() []variant {
	jwt := func(h map[string]any) map[string]any { return route(h, "jwt") }
	return []variant{
		{"none", "JWT route, full configuration", "/jwt", func(map[string]any) {}},
		{"plain", "public route, full configuration (the floor)", "/plain", func(map[string]any) {}},
		{"-accesslog", "no access log", "/jwt", func(h map[string]any) { delete(h, "access_log") }},
		{"-backstop", "no local_ratelimit backstop", "/jwt", func(h map[string]any) {
			dropFilter(h, "envoy.filters.http.local_ratelimit")
		}},
		{"-ratelimit-headers", "backstop without x-ratelimit-* headers", "/jwt", func(h map[string]any) {
			delete(perFilter(jwt(h), "envoy.filters.http.local_ratelimit"), "enable_x_ratelimit_headers")
		}},
		{"-rlqs", "no rate_limit_quota", "/jwt", func(h map[string]any) { dropFilter(h, "envoy.filters.http.rate_limit_quota") }},
		{"-rlqs-state", "no rate_limit_quota nor its set_filter_state", "/jwt", func(h map[string]any) {
			dropFilter(h, "envoy.filters.http.rate_limit_quota")
			dropFilter(h, "tollgate.quota_state")
		}},
		{"-rbac", "no rbac", "/jwt", func(h map[string]any) { dropFilter(h, "envoy.filters.http.rbac") }},
		{"-ietf-headers", "no RateLimit/RateLimit-Policy filters (run with -ietf-headers)", "/jwt", func(h map[string]any) {
			dropFilter(h, "tollgate.ratelimit_headers")
			dropFilter(h, "tollgate.ratelimit_headers_static")
		}},
		{"-lua-limits", "no Lua identity script, no rate limits (they read its metadata)", "/jwt", func(h map[string]any) {
			for _, f := range []string{"tollgate.jwt_identity", "envoy.filters.http.rate_limit_quota", "tollgate.quota_state", "envoy.filters.http.local_ratelimit"} {
				dropFilter(h, f)
			}
		}},
		{"-limits", "no rate limits (RLQS, its filter state, backstop)", "/jwt", func(h map[string]any) {
			for _, f := range []string{"envoy.filters.http.rate_limit_quota", "tollgate.quota_state", "envoy.filters.http.local_ratelimit"} {
				dropFilter(h, f)
			}
		}},
		{"-ext_authz", "no (per-route disabled) ext_authz filter", "/jwt", func(h map[string]any) { dropFilter(h, "envoy.filters.http.ext_authz") }},
		{"-strip", "no identity strip header_mutation", "/jwt", func(h map[string]any) { dropFilter(h, "envoy.filters.http.header_mutation") }},
		{"-routestats", "no per-route stat_prefix", "/jwt", func(h map[string]any) {
			for _, r := range routes(h) {
				delete(r, "stat_prefix")
			}
		}},
		{"-requestid", "no request id generation", "/jwt", func(h map[string]any) {
			h["generate_request_id"] = false
			delete(h, "always_set_request_id_in_response")
		}},
		{"-localreply", "no local reply mappers", "/jwt", func(h map[string]any) { delete(h, "local_reply_config") }},
		{"-limits,lua-empty", "no rate limits, Lua script that does nothing", "/jwt", func(h map[string]any) {
			noLimits(h)
			setLua(h, "function envoy_on_request(h) end")
		}},
		{"-limits,lua-get", "no rate limits, Lua script that only reads jwt_authn's metadata", "/jwt", func(h map[string]any) {
			noLimits(h)
			setLua(h, "function envoy_on_request(h) local md = h:streamInfo():dynamicMetadata():get(\"envoy.filters.http.jwt_authn\") end")
		}},
		{"-jwt-lua-limits-rbac", "public path's filters only, on the JWT route", "/jwt", func(h map[string]any) {
			noLimits(h)
			for _, f := range []string{"tollgate.jwt_identity", "envoy.filters.http.rbac", "envoy.filters.http.jwt_authn"} {
				dropFilter(h, f)
			}
		}},
		{"plain-accesslog", "public route without the access log", "/plain", func(h map[string]any) { delete(h, "access_log") }},
		{"-cel", "access log path from %REQ(:PATH)% instead of CEL", "/jwt", func(h map[string]any) {
			for _, al := range list(h["access_log"]) {
				lf := get(al, "typed_config", "log_format").(map[string]any)
				delete(lf, "formatters")
				lf["json_format"].(map[string]any)["path"] = "%REQ(:PATH)%"
			}
		}},
		{"-limits,lua-nometa", "no rate limits, Lua script without its six metadata writes", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLua(h, func(src string) string { return regexp.MustCompile(`(?m)^  m:set.*$`).ReplaceAllString(src, "") })
		}},
		{"-limits,lua-noheaders", "no rate limits, Lua script without its header writes", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLua(h, func(src string) string {
				return strings.Replace(src, "if v ~= \"\" then hs:replace(name, v) else hs:remove(name) end", "", 1)
			})
		}},
		{"-limits,lua-nochecks", "no rate limits, Lua script without alg and claim checks", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLua(h, func(src string) string {
				src = strings.Replace(src, "if hd == nil or not p.algs[hd.alg] then return deny(h, \"alg_not_allowed\") end", "", 1)
				return strings.Replace(src, "if type(user) ~= \"string\" or user == \"\" or not clean(user) then return deny(h, \"bad_claim\") end", "", 1)
			})
		}},
		{"rbac-contains", "ambiguous-credentials check with contains instead of a regex", "/jwt", func(h map[string]any) {
			b, _ := json.Marshal(perFilter(route(h, "jwt"), "envoy.filters.http.rbac"))
			var m map[string]any
			_ = json.Unmarshal([]byte(strings.Replace(string(b), `"safe_regex":{"regex":".*,.*"}`, `"contains":","`, 1)), &m)
			route(h, "jwt")["typed_per_filter_config"].(map[string]any)["envoy.filters.http.rbac"] = m
		}},
		{"-log-metadata", "access log without its DYNAMIC_METADATA fields", "/jwt", func(h map[string]any) {
			logFields(h, func(k, v string) bool { return !strings.Contains(v, "DYNAMIC_METADATA") })
		}},
		{"log-metadata-only", "access log with only its DYNAMIC_METADATA fields", "/jwt", func(h map[string]any) {
			logFields(h, func(k, v string) bool { return strings.Contains(v, "DYNAMIC_METADATA") })
		}},
		{"log-one-field", "access log with only the status", "/jwt", func(h map[string]any) {
			logFields(h, func(k, v string) bool { return k == "status" })
		}},
		{"-limits,-accesslog", "no rate limits, no access log", "/jwt", func(h map[string]any) {
			noLimits(h)
			delete(h, "access_log")
		}},
		{"-limits,-log-metadata", "no rate limits, access log without its DYNAMIC_METADATA fields", "/jwt", func(h map[string]any) {
			noLimits(h)
			logFields(h, func(k, v string) bool { return !strings.Contains(v, "DYNAMIC_METADATA") })
		}},
		{"-limits,log-one-field", "no rate limits, access log with only the status", "/jwt", func(h map[string]any) {
			noLimits(h)
			logFields(h, func(k, v string) bool { return k == "status" })
		}},
		{"-limits,log-id-headers", "no rate limits, access log user_id/tenant/tier from the identity headers", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"user_id": "%REQ(x-user-id)%", "tenant": "%REQ(x-tenant-id)%", "tier": "%REQ(x-consumer-tier)%"})
		}},
		{"-limits,log-id-headers-all", "no rate limits, access log identity from headers only (consumer = x-user-id, no auth_method)", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"user_id": "%REQ(x-user-id)%", "tenant": "%REQ(x-tenant-id)%", "tier": "%REQ(x-consumer-tier)%",
				"consumer": "%REQ(x-user-id)%", "auth_method": ""})
		}},
		{"-limits,log-id-cel", "no rate limits, access log user_id/tenant/tier from headers through a CEL guard", "/jwt", func(h map[string]any) {
			noLimits(h)
			cel := func(hd string) string {
				return "%CEL(has(xds.route_name) && '" + hd + "' in request.headers ? request.headers['" + hd + "'] : '')%"
			}
			editLogFields(h, map[string]string{"user_id": cel("x-user-id"), "tenant": cel("x-tenant-id"), "tier": cel("x-consumer-tier")})
		}},
		{"-limits,log-ns-once", "no rate limits, access log identity as one DYNAMIC_METADATA of the whole namespace", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"user_id": "", "tenant": "", "tier": "", "consumer": "", "auth_method": "",
				"authz": "%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%"})
		}},
		{"-limits,log-md-two", "no rate limits, access log consumer and auth_method from metadata, the other identity fields absent", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"user_id": "", "tenant": "", "tier": ""})
		}},
		{"-limits,log-no-ratelimit", "no rate limits, access log without its (empty) rate_limit field", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"rate_limit": ""})
		}},
		{"-limits,claims-native", "no rate limits, no identity script: jwt_authn claim_to_headers sets x-user-id and x-user-roles", "/jwt", func(h map[string]any) {
			noLimits(h)
			dropFilter(h, "tollgate.jwt_identity")
			for _, f := range list(h["http_filters"]) {
				if get(f, "name") != "envoy.filters.http.jwt_authn" {
					continue
				}
				for _, p := range get(f, "typed_config", "providers").(map[string]any) {
					p.(map[string]any)["claim_to_headers"] = []any{
						map[string]any{"header_name": "x-user-id", "claim_name": "sub"},
						map[string]any{"header_name": "x-user-roles", "claim_name": "roles"},
					}
				}
			}
		}},
		{"-limits,log-split-md", "no rate limits, two access logs split on ext_authz's consumer metadata: identity from headers (consumer, auth_method from metadata) or no identity", "/jwt", func(h map[string]any) {
			noLimits(h)
			splitLog(h, map[string]string{"user_id": "%REQ(x-user-id)%", "tenant": "%REQ(x-tenant-id)%", "tier": "%REQ(x-consumer-tier)%"})
		}},
		{"-limits,log-split-md-hdr", "as -limits,log-split-md, consumer also from x-user-id, no auth_method (cost floor)", "/jwt", func(h map[string]any) {
			noLimits(h)
			splitLog(h, map[string]string{"user_id": "%REQ(x-user-id)%", "tenant": "%REQ(x-tenant-id)%", "tier": "%REQ(x-consumer-tier)%",
				"consumer": "%REQ(x-user-id)%", "auth_method": ""})
		}},
		{"-limits,log-no-user-id", "no rate limits, access log without user_id (a filled metadata field)", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"user_id": ""})
		}},
		{"-limits,log-no-tenant", "no rate limits, access log without tenant (an empty metadata field)", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"tenant": ""})
		}},
		{"-limits,log-no-consumer", "no rate limits, access log without consumer (a filled metadata field)", "/jwt", func(h map[string]any) {
			noLimits(h)
			editLogFields(h, map[string]string{"consumer": ""})
		}},
		{"key", "signed-key route, full configuration", "/key", func(map[string]any) {}},
		{"key-limits", "signed-key route, no rate limits (RLQS, its filter state, backstop)", "/key", noLimits},
		{"key-accesslog", "signed-key route, no access log", "/key", func(h map[string]any) { delete(h, "access_log") }},
		{"key-limits-accesslog", "signed-key route, no rate limits, no access log", "/key", func(h map[string]any) {
			noLimits(h)
			delete(h, "access_log")
		}},
		{"none-again", "JWT route, full configuration (repeatability)", "/jwt", func(map[string]any) {}},
	}
}

func noLimits(h map[string]any) {
	for _, f := range []string{"envoy.filters.http.rate_limit_quota", "tollgate.quota_state", "envoy.filters.http.local_ratelimit"} {
		dropFilter(h, f)
	}
}

// logFields keeps the access log's JSON fields for which keep is true.
func logFields(hcm map[string]any, keep func(k, v string) bool) {
	for _, al := range list(hcm["access_log"]) {
		f := get(al, "typed_config", "log_format", "json_format").(map[string]any)
		for k, v := range f {
			if s, _ := v.(string); !keep(k, s) {
				delete(f, k)
			}
		}
	}
}

// editLogFields sets the access log's JSON fields in set; an empty value
// removes the field.
func editLogFields(hcm map[string]any, set map[string]string) {
	for _, al := range list(hcm["access_log"]) {
		f := get(al, "typed_config", "log_format", "json_format").(map[string]any)
		for k, v := range set {
			if v == "" {
				delete(f, k)
			} else {
				f[k] = v
			}
		}
	}
}

// splitLog replaces each access log by two: one for requests with
// ext_authz's consumer metadata (fields edited by set), one for the
// others (without the identity fields).
func splitLog(hcm map[string]any, set map[string]string) {
	var out []any
	md := func(invert bool) map[string]any {
		return map[string]any{"metadata_filter": map[string]any{"match_if_key_not_found": invert, "matcher": map[string]any{
			"filter": "envoy.filters.http.ext_authz", "path": []any{map[string]any{"key": "consumer"}},
			"value": map[string]any{"present_match": true}, "invert": invert}}}
	}
	for _, al := range list(hcm["access_log"]) {
		var with, without map[string]any
		b, _ := json.Marshal(al)
		_ = json.Unmarshal(b, &with)
		_ = json.Unmarshal(b, &without)
		with["filter"], without["filter"] = md(false), md(true)
		f := get(with, "typed_config", "log_format", "json_format").(map[string]any)
		for k, v := range set {
			if v == "" {
				delete(f, k)
			} else {
				f[k] = v
			}
		}
		f = get(without, "typed_config", "log_format", "json_format").(map[string]any)
		for _, k := range []string{"user_id", "tenant", "tier", "consumer", "auth_method"} {
			delete(f, k)
		}
		out = append(out, with, without)
	}
	hcm["access_log"] = out
}

// editLua edits the identity script's source.
func editLua(hcm map[string]any, edit func(string) string) {
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") == "tollgate.jwt_identity" {
			m := get(f, "typed_config", "source_codes", "jwt_identity").(map[string]any)
			src := m["inline_string"].(string)
			out := edit(src)
			if out == src {
				// A variant whose text no longer occurs would measure the
				// full configuration under its own name.
				panic("ablation: the Lua edit changed nothing (the script changed; update the variant)")
			}
			m["inline_string"] = out
		}
	}
}

// setLua replaces the identity script's source.
func setLua(hcm map[string]any, src string) {
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") == "tollgate.jwt_identity" {
			get(f, "typed_config", "source_codes", "jwt_identity").(map[string]any)["inline_string"] = src
		}
	}
}

// route returns the route named name of the HCM's inline route config.
func route(hcm map[string]any, name string) map[string]any {
	for _, r := range routes(hcm) {
		if r["name"] == name {
			return r
		}
	}
	return nil
}

func routes(hcm map[string]any) []map[string]any {
	var out []map[string]any
	for _, vh := range list(get(hcm, "route_config", "virtual_hosts")) {
		for _, r := range list(get(vh, "routes")) {
			out = append(out, r.(map[string]any))
		}
	}
	return out
}

func perFilter(r map[string]any, name string) map[string]any {
	m, _ := get(r, "typed_per_filter_config", name).(map[string]any)
	return m
}

// dropFilter removes an HTTP filter and its per-route configs.
func dropFilter(hcm map[string]any, name string) {
	var kept []any
	for _, f := range list(hcm["http_filters"]) {
		if get(f, "name") != name {
			kept = append(kept, f)
		}
	}
	hcm["http_filters"] = kept
	for _, r := range routes(hcm) {
		if m, ok := r["typed_per_filter_config"].(map[string]any); ok {
			delete(m, name)
		}
	}
}

// variantEnvoy is a running variant.
type variantEnvoy struct {
	v      variant
	pid    int
	url    string
	cpu    [][2]float64  // per measurement: Envoy µs/request, admitted req/s
	rounds []roundSample // the same measurements in detail
}

// ablate starts one Envoy per selected variant (all at once), warms each
// up, then measures them round-robin o.reps times at o.rate and prints
// the median Envoy CPU per request of each.
func ablate(w io.Writer, dir string, ps *procs, sh *shared, cfgs ablateConfigs, authFor func(variant) func(int) string, o ablateOpts) error {
	var envs []*variantEnvoy
	for _, v := range variants() {
		if v.name != "none" && o.only != "" && !strings.Contains(","+o.only+",", ","+v.name+",") {
			continue
		}
		ve, err := startVariant(dir, ps, sh, cfgs.of(v), v, o.envoyEnv...)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		envs = append(envs, ve)
	}
	inOrder(envs[1:], o.only)
	for _, ve := range envs { // every token verified and every bucket made
		loadgen.Open(ve.url, authFor(ve.v), 1000, openConns, 0, 2*time.Second)
	}
	mode := fmt.Sprintf("%.0f req/s open loop", o.rate)
	if o.rate == 0 {
		mode = fmt.Sprintf("closed loop, %d connections", satConns)
	}
	fmt.Fprintf(w, "%s\nablation: %s, %s per measurement, %d rounds; load before: %s\n", machine(), mode, o.dur, o.reps, loadavg())
	if o.idle > 0 {
		time.Sleep(2 * time.Second)
		printIdle(w, envs, o.idle, "after warm-up")
	}
	round := 0
	one := func(ve *variantEnvoy) [2]float64 {
		s := measureRound(ve, authFor(ve.v), o, round)
		if s.bad > 0 {
			fmt.Fprintf(w, "variant %s: %d non-200 answers\n", ve.v.name, s.bad)
		}
		c := [2]float64{s.us, s.rps}
		ve.cpu, ve.rounds = append(ve.cpu, c), append(ve.rounds, s)
		return c
	}
	// The full configuration runs before every variant: each variant's
	// difference is taken against the mean of its two neighbours.
	deltas := map[string][]float64{}
	for r := range o.reps {
		round = r
		prev := one(envs[0])
		for _, ve := range envs[1:] {
			c := one(ve)
			next := one(envs[0])
			deltas[ve.v.name] = append(deltas[ve.v.name], c[0]-(prev[0]+next[0])/2)
			prev = next
		}
	}
	fmt.Fprintf(w, "load after: %s\n\n| variant | what | Envoy µs/req (median) | runs | req/s | Δ vs full (median of paired) | paired Δs |\n|---|---|---:|---|---:|---:|---|\n", loadavg())
	for _, ve := range envs {
		var xs, rps []float64
		var runs []string
		for _, c := range ve.cpu {
			xs, rps = append(xs, c[0]), append(rps, c[1])
			runs = append(runs, fmt.Sprintf("%.0f", c[0]))
		}
		var ds []string
		for _, d := range deltas[ve.v.name] {
			ds = append(ds, fmt.Sprintf("%+.0f", d))
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f | %+.0f | %s |\n", ve.v.name, ve.v.what, median(xs), strings.Join(runs, " "), median(rps),
			median(deltas[ve.v.name]), strings.Join(ds, " "))
	}
	printRounds(w, envs)
	if o.idle > 0 {
		time.Sleep(2 * time.Second)
		printIdle(w, envs, o.idle, "after the rounds")
	}
	return nil
}

// startVariant writes the variant's bootstrap (own listener and admin
// ports) and starts its Envoy.
func startVariant(dir string, ps *procs, sh *shared, cfg map[string]any, v variant, env ...string) (*variantEnvoy, error) {
	vdir, boot, ports, err := variantBootstrap(dir, sh, cfg, v)
	if err != nil {
		return nil, err
	}
	pid, err := startEnvoy(vdir, ps, boot, ports[1], ports[0], env...)
	if err != nil {
		return nil, err
	}
	return &variantEnvoy{v: v, pid: pid, url: fmt.Sprintf("http://127.0.0.1:%d%s/x", ports[0], v.path)}, nil
}

// variantBootstrap returns the variant's directory, bootstrap and ports
// (listener, admin).
func variantBootstrap(dir string, sh *shared, cfg map[string]any, v variant) (string, []byte, []int, error) {
	var c map[string]any
	b, _ := json.Marshal(cfg)
	if err := json.Unmarshal(b, &c); err != nil { // a deep copy
		return "", nil, nil, err
	}
	ports, err := loadgen.FreePorts(2)
	if err != nil {
		return "", nil, nil, err
	}
	c["admin"] = map[string]any{"address": map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": ports[1]}}}
	sr := c["static_resources"].(map[string]any)
	for _, cl := range list(sr["clusters"]) {
		m := cl.(map[string]any)
		if m["name"] == "up" {
			m["load_assignment"] = map[string]any{"cluster_name": "up", "endpoints": []any{map[string]any{"lb_endpoints": []any{
				map[string]any{"endpoint": map[string]any{"address": map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": sh.upPort()}}}}}}}}
		}
	}
	for _, l := range list(sr["listeners"]) {
		m := l.(map[string]any)
		m["address"] = map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": ports[0]}}
		for _, h := range hcms(m) {
			v.edit(h)
		}
	}
	boot, err := json.Marshal(c)
	if err != nil {
		return "", nil, nil, err
	}
	vdir := filepath.Join(dir, "variant"+v.name)
	return vdir, boot, ports, os.MkdirAll(vdir, 0o755)
}
