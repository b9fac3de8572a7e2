package translator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	h2mv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_to_metadata/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
)

// TestIdentityMetadataRules: on every native route the identity metadata
// filter copies the identity headers into ext_authz's metadata: with the
// method "jwt" on a JWT route (whose script writes the consumer), with the
// consumer on a key or mixed route (whose scripts write the method).
func TestIdentityMetadataRules(t *testing.T) {
	r := translateCase(t, "apikey-mixed")
	ns := envoy.ExtAuthzName
	common := []string{"x-user-id>" + ns + ":user_id", "x-user-roles>" + ns + ":roles", "x-tenant-id>" + ns + ":tenant",
		"x-consumer-tier>" + ns + ":tier"}
	jwt := append([]string{"x-user-id>" + ns + ":method=jwt"}, common...)
	keys := append([]string{"x-user-id>" + ns + ":consumer"}, common...)
	for _, tt := range []struct {
		route string
		want  []string
	}{
		{"users", jwt},    // JWT only
		{"search", keys},  // API keys only
		{"orders", keys},  // JWTs and API keys
		{"reports", keys}, // JWTs and API keys
	} {
		t.Run(tt.route, func(t *testing.T) {
			if got := identityRules(t, r, tt.route); !slices.Equal(got, tt.want) {
				t.Errorf("rules = %v, want %v", got, tt.want)
			}
		})
	}
}

// identityRules returns route's identity metadata rules as
// "header>namespace:key[=value]", each applied only on a present header.
func identityRules(t *testing.T, r *Resources, route string) []string {
	t.Helper()
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, er := range vh.GetRoutes() {
				if er.GetName() != route {
					continue
				}
				var cfg h2mv3.Config
				a := er.GetTypedPerFilterConfig()[identityMetadataFilter]
				if a == nil || a.UnmarshalTo(&cfg) != nil {
					t.Fatalf("route %s: no identity metadata config", route)
				}
				var out []string
				for _, rule := range cfg.GetRequestRules() {
					kv := rule.GetOnHeaderPresent()
					if rule.GetOnHeaderMissing() != nil || rule.GetRemove() || kv.GetType() != h2mv3.Config_STRING {
						t.Errorf("route %s: rule %v does more than copy a present header as a string", route, rule)
					}
					s := fmt.Sprintf("%s>%s:%s", rule.GetHeader(), kv.GetMetadataNamespace(), kv.GetKey())
					if kv.GetValue() != "" {
						s += "=" + kv.GetValue()
					}
					out = append(out, s)
				}
				return out
			}
		}
	}
	t.Fatalf("no route %s", route)
	return nil
}

// TestIdentityMetadataReadsOnlyStrippedHeaders: the identity metadata
// filter comes after both identity scripts, whose headers it copies, and
// before rbac, which reads the roles; every header it reads is one the
// edge's first filter removes from the client's request, so no value a
// client sends can reach the metadata.
func TestIdentityMetadataReadsOnlyStrippedHeaders(t *testing.T) {
	for _, name := range []string{"auth", "apikey-native", "apikey-native-quota", "apikey-mixed"} {
		t.Run(name, func(t *testing.T) {
			r := translateCase(t, name)
			hcm := decodeHCM(t, r.Listeners[0])
			names := filterNames(hcm)
			at := slices.Index(names, identityMetadataFilter)
			if at < 0 || names[0] != envoy.HeaderMutationName || names[at+1] != envoy.RBACName {
				t.Fatalf("filters %v: want the strip first and the identity metadata filter right before rbac", names)
			}
			for _, script := range []string{jwtIdentityFilter, KeyIdentityFilter} {
				if i := slices.Index(names, script); i > at {
					t.Errorf("filters %v: %s after the identity metadata filter", names, script)
				}
			}
			stripped := strippedHeaders(t, hcm.GetHttpFilters()[0])
			for _, rc := range r.Routes {
				for _, vh := range rc.GetVirtualHosts() {
					for _, er := range vh.GetRoutes() {
						if er.GetTypedPerFilterConfig()[identityMetadataFilter] == nil {
							continue
						}
						for _, rule := range identityRules(t, r, er.GetName()) {
							h, _, _ := strings.Cut(rule, ">")
							if !slices.Contains(stripped, h) {
								t.Errorf("route %s copies %s, which the edge does not strip (%v)", er.GetName(), h, stripped)
							}
						}
					}
				}
			}
		})
	}
}

// strippedHeaders returns the request headers the edge filter f removes.
func strippedHeaders(t *testing.T, f *hcmv3.HttpFilter) []string {
	t.Helper()
	hm := unpack(t, f, &headermutationv3.HeaderMutation{})
	var out []string
	for _, m := range hm.GetMutations().GetRequestMutations() {
		if h := m.GetRemove(); h != "" {
			out = append(out, h)
		}
	}
	return out
}
