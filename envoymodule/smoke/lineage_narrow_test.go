package smoke

import (
	"os"
	"testing"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// TestModuleNarrowedKeyPush: a push that narrows cached signed keys
// without revoking them (one loses the role a route needs, another moves
// to a lower tier) never lets the successor serve a key's old identity
// from an entry copied from its predecessor: the first is refused 403 on
// the route that needs the role, the second reaches the upstream with its
// new tier, and an unaffected key is still served from the C table.
func TestModuleNarrowedKeyPush(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	ks := mintKeys(t, 3) // gold, roles [user]
	narrowed, retiered, plain := ks.fresh[0], ks.fresh[1], ks.fresh[2]
	fc := filterConfig(fx.iss)
	fc.Keys = ks.keys
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withKeyRoute(cfg, "/kuser", envoymod.RouteConfig{Extensions: map[string]string{"route": "kuser", "methods": "apiKey",
		"roles": "user"}})
	ecds := withECDS(t, cfg, fc)
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	hdr := func(k string) map[string]string { return map[string]string{"x-api-key": k} }
	waitStatus(t, fx.listen, "/kuser", hdr(plain), 200) // the ECDS config (fresh) serves
	for range 2 {                                       // decided in Go, then from the C table
		for _, k := range []string{narrowed, retiered, plain} {
			if a := get(t, fx.listen, "/kuser", hdr(k)); a.status != 200 || a.upstream["x-md-tier"] != "gold" {
				t.Fatalf("before the push: %d %s tier %q, want 200 gold", a.status, a.body, a.upstream["x-md-tier"])
			}
		}
	}
	next := *ks.keys
	next.Exceptions = append(append([]envoymod.KeyException(nil), ks.keys.Exceptions...),
		envoymod.KeyException{ID: keyID(t, narrowed), Tier: "gold", Roles: []string{"reader"}},
		envoymod.KeyException{ID: keyID(t, retiered), Tier: "basic", Roles: []string{"user"}})
	fc.Keys = &next
	ecds.push(t, fc)
	waitStatus(t, fx.listen, "/kuser", hdr(narrowed), 403)
	before := moduleStats(t, fx.admin)
	if a := get(t, fx.listen, "/kuser", hdr(retiered)); a.status != 200 || a.upstream["x-md-tier"] != "basic" {
		t.Errorf("re-tiered key after the push: %d %s tier %q, want 200 basic", a.status, a.body, a.upstream["x-md-tier"])
	}
	if a := get(t, fx.listen, "/kuser", hdr(narrowed)); a.status != 403 {
		t.Errorf("narrowed key again: %d %s, want 403", a.status, a.body)
	}
	expectStatus(t, fx.listen, "/kuser", hdr(plain), 200)
	after := moduleStats(t, fx.admin)
	if d := after["rq_table_allowed"] - before["rq_table_allowed"]; d != 1 {
		t.Errorf("after the push: table allowed +%d, want +1 (the unaffected key)", d)
	}
	if d := after["rq_go_allowed"] - before["rq_go_allowed"]; d != 1 {
		t.Errorf("after the push: Go allowed +%d, want +1 (the re-tiered key)", d)
	}
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}
