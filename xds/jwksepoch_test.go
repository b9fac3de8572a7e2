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

// jwtGateway translates a gateway with one native JWT route whose
// provider's JWKS is remote (jwksURI) or inline.
func jwtGateway(t *testing.T, remote bool) *translator.Resources {
	t.Helper()
	return jwtGatewaySkew(t, remote, 30*time.Second)
}

// jwtGatewaySkew is jwtGateway whose provider allows a clock skew of skew.
func jwtGatewaySkew(t *testing.T, remote bool, skew time.Duration) *translator.Resources {
	t.Helper()
	p := ir.JWTProvider{Name: "corp", Issuer: "https://id.example.com/", Algorithms: []string{"RS256"}, ClockSkew: skew}
	if remote {
		p.JWKSURI = "https://id.example.com/jwks.json"
	} else {
		p.JWKS = `{"keys":[]}`
	}
	cfg := &ir.Config{
		Auth: ir.Auth{JWT: []ir.JWTProvider{p}},
		Gateways: []ir.Gateway{{Name: "g", Listeners: []ir.Listener{{Name: "http", Address: "127.0.0.1", Port: 8080}},
			VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: []ir.Route{{
				Name: "jwt", Match: ir.Match{PathPrefix: "/"}, Backend: "b", Timeout: time.Second,
				Auth: ir.RouteAuth{Methods: []string{ir.MethodJWT}},
			}}}}}},
		Backends: []ir.Backend{{Name: "b", Endpoints: []ir.Endpoint{{Host: "127.0.0.1", Port: 9000}}, LoadBalancing: ir.RoundRobin, ConnectTimeout: time.Second}},
	}
	r, err := translator.Translate(cfg, "g", translator.Options{AuthzAddress: "127.0.0.1:9191"})
	if err != nil {
		t.Fatal(err)
	}
	if (r.JWTAuthn != nil) != remote {
		t.Fatalf("jwt_authn over ECDS: %v, want %v", r.JWTAuthn != nil, remote)
	}
	return r
}

// TestBumpJWKSEpochChangesOnlyTheExtension: a new epoch changes the ECDS
// resources' version of a gateway whose jwt_authn is served over ECDS and
// no other type's; a gateway with inline JWKS only is left alone; an Apply
// after it serves the current epoch.
func TestBumpJWKSEpochChangesOnlyTheExtension(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AckTimeout: time.Second})
	remote, inline := jwtGateway(t, true), jwtGateway(t, false)
	desired := map[string]*translator.Resources{"remote": remote, "inline": inline}
	if _, err := s.Apply(context.Background(), desired); err != nil {
		t.Fatal(err)
	}
	before := s.current()
	if n := len(before["remote"].of[resource.ExtensionConfigType].items); n != 1 {
		t.Fatalf("%d ECDS resources, want 1", n)
	}
	if epoch := s.BumpJWKSEpoch("test"); epoch != 1 {
		t.Fatalf("epoch %d, want 1", epoch)
	}
	after := s.current()
	if after["inline"] != before["inline"] {
		t.Error("a gateway without jwt_authn over ECDS got a new snapshot")
	}
	for _, typ := range allTypes() {
		changed := before["remote"].of[typ].version != after["remote"].of[typ].version
		if changed != (typ == resource.ExtensionConfigType) {
			t.Errorf("%s: version changed %t", shortType(typ), changed)
		}
	}
	if _, err := s.Apply(context.Background(), desired); err != nil {
		t.Fatal(err)
	}
	if v := s.current()["remote"].of[resource.ExtensionConfigType].version; v != after["remote"].of[resource.ExtensionConfigType].version {
		t.Fatal("an Apply served another epoch than the current one")
	}
}

// keyAndJWTGateway translates a gateway with a native key route and a
// native JWT route whose provider's JWKS is remote: both ECDS resources.
func keyAndJWTGateway(t *testing.T) *translator.Resources {
	t.Helper()
	cfg := &ir.Config{
		Auth: ir.Auth{APIKeys: &ir.APIKeys{Header: "x-api-key"}, JWT: []ir.JWTProvider{{Name: "corp", Issuer: "https://id.example.com/",
			JWKSURI: "https://id.example.com/jwks.json", Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second}}},
		Gateways: []ir.Gateway{{Name: "g", Listeners: []ir.Listener{{Name: "http", Address: "127.0.0.1", Port: 8080}},
			VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: []ir.Route{
				{Name: "keys", Match: ir.Match{PathPrefix: "/keys"}, Backend: "b", Timeout: time.Second, Auth: ir.RouteAuth{Methods: []string{ir.MethodAPIKey}}},
				{Name: "jwt", Match: ir.Match{PathPrefix: "/"}, Backend: "b", Timeout: time.Second, Auth: ir.RouteAuth{Methods: []string{ir.MethodJWT}}},
			}}}}},
		Backends: []ir.Backend{{Name: "b", Endpoints: []ir.Endpoint{{Host: "127.0.0.1", Port: 9000}}, LoadBalancing: ir.RoundRobin, ConnectTimeout: time.Second}},
	}
	r, err := translator.Translate(cfg, "g", translator.Options{AuthzAddress: "127.0.0.1:9191",
		KeyJWKS: `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyIdentity == nil || r.JWTAuthn == nil {
		t.Fatalf("key identity %v, jwt_authn over ECDS %v: want both", r.KeyIdentity != nil, r.JWTAuthn != nil)
	}
	return r
}

// TestBumpJWKSEpochKeepsARejectedKeyTableOut: on a gateway with both ECDS
// resources, a new epoch changes jwt_authn's resource alone: the key
// table a proxy refused stays replaced by the one refusing every signed
// key.
func TestBumpJWKSEpochKeepsARejectedKeyTableOut(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AckTimeout: time.Second})
	r := keyAndJWTGateway(t)
	if _, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": r}); err != nil {
		t.Fatal(err)
	}
	each := func() map[string]string { return s.current()["g"].of[resource.ExtensionConfigType].each }
	if n := len(each()); n != 2 {
		t.Fatalf("%d ECDS resources, want 2", n)
	}
	s.SetKeyExceptions(translator.KeyExceptions{Loaded: true, Fresh: true, Items: []translator.KeyException{{ID: "k", Revoked: true}}})
	s.keyTableRejected("g")
	refusing := each()
	s.BumpJWKSEpoch("test")
	after := each()
	if after[translator.KeyIdentityFilter] != refusing[translator.KeyIdentityFilter] {
		t.Error("a new epoch served the rejected key table again")
	}
	if after[r.JWTAuthn.Name()] == refusing[r.JWTAuthn.Name()] {
		t.Error("a new epoch left jwt_authn's resource as it was")
	}
}
