package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// moduleFilterName is the HTTP filter of Tollgate's Envoy module in the quota
// stack's chain when the stack runs with --envoy-module
// (xds/translator/jwtmodule.go).
const moduleFilterName = "tollgate.identity_module"

// startQuota starts the quota stack of the ablation: with module, its
// `tollgate serve` hands native JWT routes to Tollgate's Envoy module (the
// library shared.module, built by startShared into the run's directory,
// which is removed only after every variant Envoy is stopped).
func startQuota(sh *shared, ps *procs, module bool) (*stack, error) {
	if !module {
		return startTollgate(sh, ps, "quota", 2)
	}
	if sh.module == "" {
		return nil, errors.New("-module: Tollgate's Envoy module could not be built (see the error above)")
	}
	return startTollgateNamed(sh, ps, "quota-module", "quota", 2, "--envoy-module", sh.module)
}

// dumpConfig writes cfg to path. With module, the module library is
// copied next to path (the run's copy is deleted when the run ends) and
// cfg names the copy.
func dumpConfig(path string, cfg map[string]any, lib string, module bool) error {
	if module {
		dst, err := filepath.Abs(filepath.Join(filepath.Dir(path), envoymod.LibraryName))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(lib)
		if err != nil {
			return fmt.Errorf("copy the Envoy module: %w", err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			return fmt.Errorf("copy the Envoy module: %w", err)
		}
		if n := renameModule(cfg, lib, dst); n == 0 {
			return fmt.Errorf("the configuration names no module file %s", lib)
		}
	}
	b, _ := json.MarshalIndent(cfg, "", " ")
	return os.WriteFile(path, b, 0o644)
}

// renameModule replaces every "filename" value from by to in v and
// returns how many it replaced.
func renameModule(v any, from, to string) int {
	n := 0
	switch m := v.(type) {
	case map[string]any:
		for k, x := range m {
			if s, ok := x.(string); ok && k == "filename" && s == from {
				m[k] = to
				n++
				continue
			}
			n += renameModule(x, from, to)
		}
	case []any:
		for _, x := range m {
			n += renameModule(x, from, to)
		}
	}
	return n
}

// moduleVariants are the ablation's configurations of the quota stack
// run with -module: the JWT route is decided by Tollgate's Envoy module.
// Without the module nothing writes the identity the limits key on, so
// RLQS would send every request to its deny bucket (429): "-module"
// removes the limits too and is compared with "-limits".
func moduleVariants() []variant {
	return []variant{
		{"-module", "no Envoy module and no rate limits (the JWT route's floor without auth; compare with -limits)", "/jwt", func(h map[string]any) {
			noLimits(h)
			dropFilter(h, moduleFilterName)
		}},
		{"-module-noauth", "as -module, requests without Authorization", "/jwt", func(h map[string]any) {
			noLimits(h)
			dropFilter(h, moduleFilterName)
		}},
		{"-module-only", "no Envoy module, rate limits kept: nothing writes the consumer, RLQS's deny bucket answers 429 (reported)", "/jwt", func(h map[string]any) {
			dropFilter(h, moduleFilterName)
		}},
		{"-module,-accesslog", "no Envoy module, no rate limits, no access log", "/jwt", func(h map[string]any) {
			noLimits(h)
			dropFilter(h, moduleFilterName)
			delete(h, "access_log")
		}},
		{"-limits,-accesslog,-strip", "no rate limits, no access log, no identity strip", "/jwt", func(h map[string]any) {
			noLimits(h)
			delete(h, "access_log")
			dropFilter(h, "envoy.filters.http.header_mutation")
		}},
		{"-key-chain", "no jwt_authn, key identity script, header_to_metadata, rbac (the signed-key route's filters, idle on the module's JWT route)", "/jwt", dropKeyChain},
		{"plain-key-chain", "public route without the signed-key route's filters (idle there too)", "/plain", dropKeyChain},
		{"plain-limits", "public route without the quota filters (set_filter_state, RLQS, backstop)", "/plain", noLimits},
		{"state-from-headers", "quota_state's consumer and tier from the identity headers (%REQ%) instead of ext_authz's metadata", "/jwt", stateFromHeaders},
		{"-rlqs,-backstop", "no rate_limit_quota, no backstop (their set_filter_state kept)", "/jwt", func(h map[string]any) {
			dropFilter(h, "envoy.filters.http.rate_limit_quota")
			dropFilter(h, "envoy.filters.http.local_ratelimit")
		}},
		{"-backstop,-log-metadata,state-from-headers", "configuration only: no backstop, no DYNAMIC_METADATA log fields, quota_state from the identity headers", "/jwt", func(h map[string]any) {
			dropFilter(h, "envoy.filters.http.local_ratelimit")
			logFields(h, func(k, v string) bool { return !strings.Contains(v, "DYNAMIC_METADATA") })
			stateFromHeaders(h)
		}},
		{"module-alt", "the module library at $ABLATE_MODULE_ALT (e.g. a patched build) instead of the built one; unset: refused (changes nothing)", "/jwt", func(h map[string]any) {
			if alt := os.Getenv("ABLATE_MODULE_ALT"); alt != "" {
				renameModuleFile(h, alt)
			}
		}},
		{"module-alt,-backstop,-log-metadata,state-from-headers", "module-alt and the configuration-only variant together", "/jwt", func(h map[string]any) {
			if alt := os.Getenv("ABLATE_MODULE_ALT"); alt != "" {
				renameModuleFile(h, alt)
			}
			dropFilter(h, "envoy.filters.http.local_ratelimit")
			logFields(h, func(k, v string) bool { return !strings.Contains(v, "DYNAMIC_METADATA") })
			stateFromHeaders(h)
		}},
		{"module-alt,-limits", "module-alt without rate limits", "/jwt", func(h map[string]any) {
			if alt := os.Getenv("ABLATE_MODULE_ALT"); alt != "" {
				renameModuleFile(h, alt)
			}
			noLimits(h)
		}},
		{"plain-limits-noauth", "public route without the quota filters, requests without Authorization", "/plain", noLimits},
		{"plain-noauth", "public route, full configuration, requests without Authorization (as the main bench's plain proxying)", "/plain", func(map[string]any) {}},
		{"plain-bare-noauth", "public route without the access log, the quota filters and the identity strip (as the main bench's plain proxying stack), no Authorization", "/plain",
			func(h map[string]any) {
				noLimits(h)
				delete(h, "access_log")
				dropFilter(h, "envoy.filters.http.header_mutation")
			}},
	}
}

// dropKeyChain removes the filters that only the signed-key route uses
// when the module decides JWT routes.
func dropKeyChain(h map[string]any) {
	for _, f := range []string{"envoy.filters.http.jwt_authn", "tollgate.key_identity", "tollgate.identity_metadata", "envoy.filters.http.rbac"} {
		dropFilter(h, f)
	}
}

// stateFromHeaders makes the quota state filter read the consumer and
// the tier from the identity headers instead of ext_authz's metadata.
func stateFromHeaders(h map[string]any) {
	from := map[string]string{
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:consumer)%": "%REQ(x-user-id)%",
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tier)%":     "%REQ(x-consumer-tier)%",
	}
	for _, f := range list(h["http_filters"]) {
		if get(f, "name") != "tollgate.quota_state" {
			continue
		}
		for _, v := range list(get(f, "typed_config", "on_request_headers")) {
			src, _ := get(v, "format_string", "text_format_source").(map[string]any)
			if to, ok := from[fmt.Sprint(src["inline_string"])]; ok {
				src["inline_string"] = to
			}
		}
	}
}

// renameModuleFile points every module.local.filename naming the module
// library (envoymod.LibraryName) in v at to.
func renameModuleFile(v any, to string) {
	switch m := v.(type) {
	case map[string]any:
		for k, x := range m {
			if s, ok := x.(string); ok && k == "filename" && filepath.Base(s) == envoymod.LibraryName {
				m[k] = to
				continue
			}
			renameModuleFile(x, to)
		}
	case []any:
		for _, x := range m {
			renameModuleFile(x, to)
		}
	}
}

// variantNeeds names, per variant, the filters its edit removes or
// changes on its route: each must have a per-route config on that route
// (the quota stack configures jwt_authn, the identity scripts, rbac and
// the module per route), or the variant would measure another
// configuration than it names, e.g. the jwt_authn path's variants on the
// module's JWT route (-module), where those filters are idle.
func variantNeeds() map[string][]string {
	const jwtAuthn, script, rbac = "envoy.filters.http.jwt_authn", "tollgate.jwt_identity", "envoy.filters.http.rbac"
	out := map[string][]string{
		"-rbac":                 {rbac},
		"rbac-contains":         {rbac},
		"-lua-limits":           {script},
		"-jwt-lua-limits-rbac":  {jwtAuthn, script, rbac},
		"-limits,claims-native": {jwtAuthn, script},
		"-key-chain":            {moduleFilterName},
	}
	for _, v := range variants() {
		switch {
		case strings.HasPrefix(v.name, "-limits,lua-"):
			out[v.name] = []string{script}
		case strings.HasPrefix(v.name, "-module"):
			out[v.name] = []string{moduleFilterName}
		}
	}
	return out
}

// unchangedVariants are the variants that measure the full configuration
// on purpose (another route, or a repeat).
func unchangedVariants() []string {
	return []string{"none", "plain", "key", "none-again", "exact-plain", "plain-noauth"}
}

// checkVariants refuses a selection with a variant that would silently
// measure another configuration than it names: one acting on a filter
// that does not act on its route (variantNeeds), or one whose edit
// changes nothing in its configuration (what it removes is absent).
func checkVariants(cfgs ablateConfigs, vs []variant) error {
	needs := variantNeeds()
	for _, v := range vs {
		cfg := cfgs.of(v)
		for _, name := range needs[v.name] {
			if !routeConfigures(cfg, v.path, name) {
				return fmt.Errorf("variant %s: %s does not act on route %s in this configuration (-module: the module decides JWT routes); it would measure something else",
					v.name, name, v.path)
			}
		}
		if strings.HasPrefix(v.name, "module-alt") && os.Getenv("ABLATE_MODULE_ALT") == "" {
			return fmt.Errorf("variant %s needs ABLATE_MODULE_ALT (the module library to run instead of the built one)", v.name)
		}
		if slices.Contains(unchangedVariants(), v.name) {
			continue
		}
		if reflect.DeepEqual(editedHCMs(cfg, v), editedHCMs(cfg, variant{})) {
			return fmt.Errorf("variant %s changes nothing in this configuration (what it removes is not there): it would measure the full configuration", v.name)
		}
	}
	return nil
}

// routeConfigures reports whether the route matching path (the route
// named by its first segment) has a per-route config of filter name in
// some connection manager of cfg.
func routeConfigures(cfg map[string]any, path, name string) bool {
	rn := strings.Trim(path, "/")
	for _, h := range editedHCMs(cfg, variant{}) {
		if r := route(h, rn); r != nil && get(r, "typed_per_filter_config", name) != nil {
			return true
		}
	}
	return false
}

// editedHCMs returns a deep copy of cfg's connection managers with v's
// edit applied (none when v has no edit).
func editedHCMs(cfg map[string]any, v variant) []map[string]any {
	var c map[string]any
	b, _ := json.Marshal(cfg)
	_ = json.Unmarshal(b, &c)
	var out []map[string]any
	for _, l := range list(get(c, "static_resources", "listeners")) {
		for _, h := range hcms(l.(map[string]any)) {
			if v.edit != nil {
				v.edit(h)
			}
			out = append(out, h)
		}
	}
	return out
}

// ablateConfigs are the static configurations variants run on: the quota
// stack's, and the exact stack's for the exact-* variants (started only
// when one is selected).
type ablateConfigs struct {
	quota, exact map[string]any
}

// of returns v's configuration.
func (c ablateConfigs) of(v variant) map[string]any {
	if fromExact(v) {
		return c.exact
	}
	return c.quota
}

// fromExact reports whether v runs on the exact stack's configuration.
func fromExact(v variant) bool { return strings.HasPrefix(v.name, "exact-") }

// exactVariants run on the exact stack's configuration, whose /plain route
// is the main bench's "plain proxying" row (rows.go).
func exactVariants() []variant {
	return []variant{
		{"exact-plain", "the main bench's plain proxying: the exact stack's public route, full configuration", "/plain", func(map[string]any) {}},
		{"exact-plain-accesslog", "the exact stack's public route without the access log", "/plain", func(h map[string]any) { delete(h, "access_log") }},
		{"exact-plain-key-chain", "the exact stack's public route without the signed-key route's filters (jwt_authn, key script, header_to_metadata, rbac)", "/plain", dropKeyChain},
	}
}
