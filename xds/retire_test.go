package xds

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/xds/translator"
)

// TestRenamedECDSFilterIsRetired: a push that renames the ECDS-served
// jwt_authn filter (a new provider setting) keeps serving the old name's
// resource beside the new one, for the replaced listener's draining
// connections; a new JWKS epoch rebuilds both; the same policy again
// changes nothing; the next rename retires the previous name and drops the
// one before; a policy without the filter keeps its last name, which a new
// epoch still rebuilds without changing the type's version; a proxy that
// does not hold the retired resource is in sync.
func TestRenamedECDSFilterIsRetired(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AckTimeout: time.Second})
	apply := func(r *translator.Resources) {
		t.Helper()
		if _, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": r}); err != nil {
			t.Fatal(err)
		}
	}
	served := func() map[string]string { return s.current()["g"].of[resource.ExtensionConfigType].each }
	names := func() []string {
		var out []string
		for n := range served() {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	want := func(step string, rs ...*translator.Resources) {
		t.Helper()
		var w []string
		for _, r := range rs {
			w = append(w, r.JWTAuthn.Name())
		}
		slices.Sort(w)
		if got := names(); !slices.Equal(got, w) {
			t.Fatalf("%s: ECDS resources %v, want %v", step, got, w)
		}
	}
	a, b, c := jwtGatewaySkew(t, true, 30*time.Second), jwtGatewaySkew(t, true, 20*time.Second), jwtGatewaySkew(t, true, 10*time.Second)
	apply(a)
	want("first policy", a)
	apply(b)
	want("renamed", a, b)
	before := served()
	s.BumpJWKSEpoch("test")
	for n, v := range served() {
		if v == before[n] {
			t.Errorf("a new epoch left %s as it was", n)
		}
	}
	version := s.current()["g"].version()
	apply(b)
	if s.current()["g"].version() != version {
		t.Error("the same policy again changed the snapshot")
	}
	apply(c)
	want("renamed again", b, c)
	ecds := func() typed { return s.current()["g"].of[resource.ExtensionConfigType] }
	held := map[string]string{c.JWTAuthn.Name(): ecds().each[c.JWTAuthn.Name()]}
	if !s.current()["g"].holds(resource.ExtensionConfigType, held) {
		t.Error("a proxy holding the current resource, not the retired one, is not in sync")
	}
	apply(jwtGateway(t, false))
	want("filter gone", c)
	// The retired resource alone changes: its subscribers get it (its own
	// version), the type's version (what proxies ACK) stays.
	version, each := ecds().version, ecds().each[c.JWTAuthn.Name()]
	s.BumpJWKSEpoch("test")
	if ecds().each[c.JWTAuthn.Name()] == each || ecds().version != version {
		t.Errorf("a new epoch for the retired filter alone: resource %s → %s, type version %s → %s",
			each, ecds().each[c.JWTAuthn.Name()], version, ecds().version)
	}
}
