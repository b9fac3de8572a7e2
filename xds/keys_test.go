package xds

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// keyGateway translates a gateway with one native key route.
func keyGateway(t *testing.T) *translator.Resources { return keyGatewayWith(t, "") }

// keyPaths are the two native key paths: the key identity filter, and
// Tollgate's Envoy module (a library path), whose own filter config
// carries the table.
var keyPaths = []struct{ name, module string }{{"filters", ""}, {"module", "/usr/lib/tollgate/libtollgate_envoy.so"}}

// keyGatewayWith translates a gateway with one native key route, decided
// by the Envoy module at path module ("": by jwt_authn and the key
// identity filter).
func keyGatewayWith(t *testing.T, module string) *translator.Resources {
	t.Helper()
	cfg := &ir.Config{
		Auth: ir.Auth{APIKeys: &ir.APIKeys{Header: "x-api-key"}},
		Gateways: []ir.Gateway{{Name: "g", Listeners: []ir.Listener{{Name: "http", Address: "127.0.0.1", Port: 8080}},
			VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: []ir.Route{{
				Name: "keys", Match: ir.Match{PathPrefix: "/"}, Backend: "b", Timeout: time.Second,
				Auth: ir.RouteAuth{Methods: []string{ir.MethodAPIKey}},
			}}}}}},
		Backends: []ir.Backend{{Name: "b", Endpoints: []ir.Endpoint{{Host: "127.0.0.1", Port: 9000}}, LoadBalancing: ir.RoundRobin, ConnectTimeout: time.Second}},
	}
	r, err := translator.Translate(cfg, "g", translator.Options{AuthzAddress: "127.0.0.1:9191",
		KeyJWKS:     `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		EnvoyModule: module})
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyIdentity == nil {
		t.Fatal("no native key route")
	}
	return r
}

// TestSetKeyExceptionsChangesOnlyTheExtension: a new table changes the
// ECDS resource's version and no other type's; the same table again
// changes nothing; an Apply after it serves the current table.
func TestSetKeyExceptionsChangesOnlyTheExtension(t *testing.T) {
	for _, p := range keyPaths {
		t.Run(p.name, func(t *testing.T) { checkKeyExceptionsChangeOnlyTheExtension(t, keyGatewayWith(t, p.module)) })
	}
}

func checkKeyExceptionsChangeOnlyTheExtension(t *testing.T, r *translator.Resources) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AckTimeout: time.Second})
	if _, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": r}); err != nil {
		t.Fatal(err)
	}
	before := s.current()["g"]
	if len(before.of[resource.ExtensionConfigType].items) != 1 {
		t.Fatalf("%d ECDS resources, want 1", len(before.of[resource.ExtensionConfigType].items))
	}
	table := translator.KeyExceptions{Loaded: true, Fresh: true, Items: []translator.KeyException{{ID: "k", Revoked: true}}}
	s.SetKeyExceptions(table)
	after := s.current()["g"]
	for _, typ := range allTypes() {
		changed := before.of[typ].version != after.of[typ].version
		if changed != (typ == resource.ExtensionConfigType) {
			t.Errorf("%s: version changed %t", shortType(typ), changed)
		}
	}
	s.SetKeyExceptions(table)
	if again := s.current()["g"]; again != after {
		t.Fatal("the same table made a new snapshot")
	}
	if _, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": r}); err != nil {
		t.Fatal(err)
	}
	if v := s.current()["g"].of[resource.ExtensionConfigType].version; v != after.of[resource.ExtensionConfigType].version {
		t.Fatal("an Apply served another table than the current one")
	}
}

// TestRejectedKeyTableFailsClosed: when a proxy refuses the exceptions
// table, the gateway is served the table that refuses every signed key,
// until the table changes.
func TestRejectedKeyTableFailsClosed(t *testing.T) {
	for _, p := range keyPaths {
		t.Run(p.name, func(t *testing.T) { checkRejectedKeyTableFailsClosed(t, keyGatewayWith(t, p.module)) })
	}
}

func checkRejectedKeyTableFailsClosed(t *testing.T, r *translator.Resources) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AckTimeout: time.Second})
	if _, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": r}); err != nil {
		t.Fatal(err)
	}
	version := func(x translator.KeyExceptions) string {
		ts, err := newTypeSet(r, x)
		if err != nil {
			t.Fatal(err)
		}
		return ts.of[resource.ExtensionConfigType].version
	}
	served := func() string { return s.current()["g"].of[resource.ExtensionConfigType].version }
	table := translator.KeyExceptions{Loaded: true, Fresh: true, Items: []translator.KeyException{{ID: "k", Revoked: true}}}
	s.SetKeyExceptions(table)
	if served() != version(table) {
		t.Fatal("the table is not served")
	}
	s.keyTableRejected("g")
	if served() != version(translator.KeyExceptions{}) {
		t.Fatal("a rejected table is not replaced by the one refusing every signed key")
	}
	s.SetKeyExceptions(table)
	if served() != version(translator.KeyExceptions{}) {
		t.Fatal("the rejected table was served again")
	}
	next := translator.KeyExceptions{Loaded: true, Fresh: true}
	s.SetKeyExceptions(next)
	if served() != version(next) {
		t.Fatal("a new table is not tried")
	}
}

// TestKeySnapshotVersionMapIsTheCaches: a gateway with native key routes,
// and the copy that serves another exceptions table, carry the version map
// go-control-plane would compute, the key identity extension included.
func TestKeySnapshotVersionMapIsTheCaches(t *testing.T) {
	ts, err := newTypeSet(keyGateway(t), translator.KeyExceptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkVersionMap(t, "no table", ts)
	other, err := ts.withExtensions(extInputs{keys: translator.KeyExceptions{Loaded: true, Fresh: true, Items: []translator.KeyException{{ID: "k", Revoked: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if other == ts {
		t.Fatal("another table made no new type set")
	}
	checkVersionMap(t, "a table", other)
}
