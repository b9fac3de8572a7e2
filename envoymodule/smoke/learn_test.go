package smoke

import (
	"crypto/rand"
	"encoding/json"
	"maps"
	"net/http"
	"testing"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// withKeyRecordStandIn adds, after cfg's module filter, a
// header_to_metadata filter standing in for ext_authz's answer admitting
// an opaque key: it writes x-test-key-record as envoymod.MetadataKeyRecord
// into ext_authz's metadata namespace, as the ext_authz filter writes the
// Check response's metadata.
func withKeyRecordStandIn(cfg map[string]any) {
	sr := cfg["static_resources"].(map[string]any)
	chains := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)
	hcm := chains[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	stand := map[string]any{"name": "ext_authz_stand_in", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
		"request_rules": []any{map[string]any{"header": "x-test-key-record", "remove": true, "on_header_present": map[string]any{
			"metadata_namespace": envoymod.ChargeMetadataNamespace, "key": envoymod.MetadataKeyRecord, "type": "STRING"}}}}}
	fs := hcm["http_filters"].([]any)
	hcm["http_filters"] = append([]any{fs[0], stand}, fs[1:]...)
}

// opaqueKey is a new opaque API key and its record's JSON as the ext_authz
// service publishes it, read in key-store epoch epoch (consumer acme, tier
// gold, role user).
func opaqueKey(t *testing.T, epoch string) (key, id, record string) {
	t.Helper()
	key, id, err := apikey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(envoymod.KeyRecord{ID: id, Consumer: "acme", Tenant: "t1", Tier: "gold", Roles: []string{"user"},
		Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return key, id, string(b)
}

// TestModuleLearnsOpaqueKeys: an opaque key the module passed on, whose
// ext_authz answer carried its record, is learned (keys_learned): its next
// request is decided in Go with the record's identity and the native
// marker, the one after from the C table; a record that is not the key's
// is not learned; a learned key whose exception revokes it is refused
// with the service's 401.
func TestModuleLearnsOpaqueKeys(t *testing.T) {
	envoyBin, fx, _, fc := keyedFixture(t)
	revoked, revokedID, revokedRecord := opaqueKey(t, fc.Keys.Epoch)
	fc.Keys.Exceptions = append(fc.Keys.Exceptions, envoymod.KeyException{ID: revokedID, Revoked: true})
	cfg := envoyConfig(fc, fx.listen, fx.admin, fx.upstream)
	withKeyRecordStandIn(cfg)
	withKeyRoute(cfg, "/learn", envoymod.RouteConfig{Extensions: map[string]string{"route": "learn", "methods": "apiKey"}})
	p := startEnvoy(t, envoyBin, fx.soDir, cfg, fx.listen, fx.admin)
	key, _, record := opaqueKey(t, fc.Keys.Epoch)
	other, _, _ := opaqueKey(t, fc.Keys.Epoch)
	stale, _, staleRecord := opaqueKey(t, "another-epoch")
	send := func(t *testing.T, h map[string]string) answer {
		t.Helper()
		return get(t, p.listen, "/learn", h)
	}
	delta := func(before map[string]int, name string) int { return moduleStats(t, fx.admin)[name] - before[name] }

	t.Run("learned, then decided in Go, then from the table", func(t *testing.T) {
		before := moduleStats(t, fx.admin)
		a := send(t, map[string]string{"x-api-key": key, "x-test-key-record": record})
		if a.status != http.StatusOK || a.upstream["x-md-native"] != "" || a.upstream["x-api-key"] != key {
			t.Fatalf("first request: %d, marker %q, key upstream %t; want 200 passed untouched", a.status,
				a.upstream["x-md-native"], a.upstream["x-api-key"] == key)
		}
		if delta(before, "rq_go_passed") != 1 || delta(before, "keys_learned") != 1 {
			t.Fatalf("rq_go_passed +%d, keys_learned +%d; want +1, +1", delta(before, "rq_go_passed"), delta(before, "keys_learned"))
		}
		want := map[string]string{"x-user-id": "partners:acme", "x-user-roles": "user", "x-tenant-id": "t1", "x-consumer-tier": "gold",
			"x-md-route": "learn", "x-md-method": "apiKey", "x-md-consumer": "partners:acme", "x-md-user_id": "partners:acme",
			"x-md-tenant": "t1", "x-md-tier": "gold", "x-md-roles": "user"}
		for i := range 2 {
			a = send(t, map[string]string{"x-api-key": key, "x-user-id": "mallory"})
			if a.status != http.StatusOK || !maps.Equal(identityView(a.upstream), want) || a.upstream["x-md-native"] != "apiKey" ||
				a.upstream["x-api-key"] != "" {
				t.Fatalf("request %d after learning: %d %v marker %q; want 200 %v with the marker, the key removed", i+2,
					a.status, identityView(a.upstream), a.upstream["x-md-native"], want)
			}
		}
		if delta(before, "rq_go_allowed") != 1 || delta(before, "rq_table_allowed") != 1 || delta(before, "rq_go_passed") != 1 {
			t.Errorf("rq_go_allowed +%d, rq_table_allowed +%d, rq_go_passed +%d; want +1, +1, +1",
				delta(before, "rq_go_allowed"), delta(before, "rq_table_allowed"), delta(before, "rq_go_passed"))
		}
	})
	t.Run("another key's record is not learned", func(t *testing.T) {
		before := moduleStats(t, fx.admin)
		send(t, map[string]string{"x-api-key": other, "x-test-key-record": record})
		a := send(t, map[string]string{"x-api-key": other})
		if a.status != http.StatusOK || a.upstream["x-md-native"] != "" || delta(before, "keys_learned") != 0 ||
			delta(before, "rq_go_passed") != 2 {
			t.Errorf("%d marker %q, keys_learned +%d, rq_go_passed +%d; want both requests passed, nothing learned",
				a.status, a.upstream["x-md-native"], delta(before, "keys_learned"), delta(before, "rq_go_passed"))
		}
	})
	t.Run("a record of another key-store epoch is not learned", func(t *testing.T) {
		before := moduleStats(t, fx.admin)
		send(t, map[string]string{"x-api-key": stale, "x-test-key-record": staleRecord})
		if a := send(t, map[string]string{"x-api-key": stale}); a.upstream["x-md-native"] != "" || delta(before, "keys_learned") != 0 {
			t.Errorf("marker %q, keys_learned +%d; want the key passed again, nothing learned", a.upstream["x-md-native"],
				delta(before, "keys_learned"))
		}
	})
	t.Run("a learned key revoked by its exception", func(t *testing.T) {
		send(t, map[string]string{"x-api-key": revoked, "x-test-key-record": revokedRecord})
		a := send(t, map[string]string{"x-api-key": revoked})
		if want := `{"error":"unauthorized","reason":"revoked_key"}`; a.status != http.StatusUnauthorized || a.body != want {
			t.Errorf("%d %q, want 401 %s", a.status, a.body, want)
		}
	})
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}
