package main

import (
	"strings"
	"testing"
)

// testConfig is a static configuration shaped like the quota stack's: one
// listener, a chain of filters, routes plain and jwt; module puts the
// module on the JWT route instead of jwt_authn, the script and rbac.
func testConfig(module bool) map[string]any {
	chain := []any{
		map[string]any{"name": "envoy.filters.http.header_mutation"},
		map[string]any{"name": "envoy.filters.http.jwt_authn"},
		map[string]any{"name": "tollgate.jwt_identity"},
		map[string]any{"name": "envoy.filters.http.rbac"},
		map[string]any{"name": "tollgate.quota_state"},
		map[string]any{"name": "envoy.filters.http.rate_limit_quota"},
		map[string]any{"name": "envoy.filters.http.local_ratelimit"},
		map[string]any{"name": "envoy.filters.http.router"},
	}
	jwtPer := map[string]any{"envoy.filters.http.local_ratelimit": map[string]any{}}
	if module {
		chain = append(chain[:1], append([]any{map[string]any{"name": moduleFilterName}}, chain[1:]...)...)
		jwtPer[moduleFilterName] = map[string]any{}
	} else {
		for _, f := range []string{"envoy.filters.http.jwt_authn", "tollgate.jwt_identity", "envoy.filters.http.rbac"} {
			jwtPer[f] = map[string]any{}
		}
	}
	hcm := map[string]any{
		"@type":        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"http_filters": chain,
		"access_log":   []any{map[string]any{}},
		"route_config": map[string]any{"virtual_hosts": []any{map[string]any{"routes": []any{
			map[string]any{"name": "plain"},
			map[string]any{"name": "jwt", "typed_per_filter_config": jwtPer},
		}}}},
	}
	l := map[string]any{"filter_chains": []any{map[string]any{"filters": []any{map[string]any{"typed_config": hcm}}}}}
	return map[string]any{"static_resources": map[string]any{"listeners": []any{l}}}
}

func TestCheckVariants(t *testing.T) {
	tests := []struct {
		name     string
		module   bool
		variants string
		wantErr  string // "" for none
	}{
		{"jwt_authn path, its variants", false, "plain,-rbac,-lua-limits,-limits,-accesslog", ""},
		{"module path, variants that apply", true, "plain,-module,-module-only,-limits,-rlqs-state,-accesslog", ""},
		{"module path, rbac is not the JWT route's", true, "-rbac", "does not act on route /jwt"},
		{"module path, a script variant that also drops limits", true, "-lua-limits", "tollgate.jwt_identity does not act"},
		{"module variant without the module", false, "-module", "tollgate.identity_module does not act"},
		{"absent filter", false, "-ext_authz", "changes nothing"},
		{"absent filter, module path", true, "-strip,-ext_authz", "variant -ext_authz changes nothing"},
		{"module-alt without its library", true, "module-alt,-limits", "needs ABLATE_MODULE_ALT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ABLATE_MODULE_ALT", "")
			err := checkVariants(ablateConfigs{quota: testConfig(tt.module)}, selected(tt.variants))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkVariants: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkVariants: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRenameModule(t *testing.T) {
	cfg := map[string]any{"a": []any{
		map[string]any{"module": map[string]any{"local": map[string]any{"filename": "/tmp/x/lib.so"}}},
		map[string]any{"filename": "/other"},
		map[string]any{"b": map[string]any{"filename": "/tmp/x/lib.so"}},
	}}
	if n := renameModule(cfg, "/tmp/x/lib.so", "/keep/lib.so"); n != 2 {
		t.Fatalf("renamed %d, want 2", n)
	}
	if got := get(list(cfg["a"])[0], "module", "local", "filename"); got != "/keep/lib.so" {
		t.Fatalf("filename %v", got)
	}
	if got := get(list(cfg["a"])[1], "filename"); got != "/other" {
		t.Fatalf("other filename changed: %v", got)
	}
}
