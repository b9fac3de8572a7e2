package translator

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
)

// sampleJWTAuthnExtension is j's ECDS resource at JWKS epoch 1.
func sampleJWTAuthnExtension(t *testing.T, j *JWTAuthn) *corev3.TypedExtensionConfig {
	t.Helper()
	e, err := j.Extension(1)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// jwtAuthnNameOf is the name of r's jwt_authn filter, which keys its
// per-route configs.
func jwtAuthnNameOf(r *Resources) string {
	if r.JWTAuthn != nil {
		return r.JWTAuthn.Name()
	}
	return envoy.JwtAuthnName
}

// discoveredJWTAuthn reports whether f is a jwt_authn filter served over
// ECDS.
func discoveredJWTAuthn(f *hcmv3.HttpFilter) bool {
	return f.GetConfigDiscovery().GetDefaultConfig().MessageIs((*jwtauthnv3.JwtAuthentication)(nil))
}

// unpackJWTAuthn returns the jwt_authn config of an ECDS resource.
func unpackJWTAuthn(t *testing.T, e *corev3.TypedExtensionConfig) *jwtauthnv3.JwtAuthentication {
	t.Helper()
	c := &jwtauthnv3.JwtAuthentication{}
	if err := e.GetTypedConfig().UnmarshalTo(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJWTAuthnServedOverECDS: a gateway whose jwt_authn verifies a remote
// JWKS gets the filter by ECDS (named after its config, the base config as
// its default); an epoch changes the served config by one unused
// requirement and the async fetch's fast_listener only, deterministically;
// a gateway with inline JWKS only keeps the inline filter.
func TestJWTAuthnServedOverECDS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote bool
	}{
		{"auth", true},
		{"apikey-native", false}, // the key provider's JWKS is inline
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := translateCase(t, tc.name)
			if (r.JWTAuthn != nil) != tc.remote {
				t.Fatalf("JWTAuthn set: %v, want %v", r.JWTAuthn != nil, tc.remote)
			}
			if !tc.remote {
				return
			}
			checkJWTAuthnEpochs(t, r.JWTAuthn)
			checkJWTAuthnFilter(t, r)
		})
	}
}

func checkJWTAuthnEpochs(t *testing.T, j *JWTAuthn) {
	t.Helper()
	if !strings.HasPrefix(j.Name(), JWTAuthnFilterPrefix) {
		t.Fatalf("name %q", j.Name())
	}
	e1, e1again, e2 := sampleJWTAuthnExtension(t, j), sampleJWTAuthnExtension(t, j), must(j.Extension(2))
	if !proto.Equal(e1, e1again) || e1.GetName() != j.Name() {
		t.Fatalf("epoch 1 twice differs, or misnamed: %v %v", e1, e1again)
	}
	if proto.Equal(e1, e2) {
		t.Fatal("epochs 1 and 2 give the same config: Envoy would keep its token cache")
	}
	c1, c2 := unpackJWTAuthn(t, e1), unpackJWTAuthn(t, e2)
	delete(c1.RequirementMap, jwksEpochRequirement+"1")
	delete(c2.RequirementMap, jwksEpochRequirement+"2")
	if !proto.Equal(c1, c2) {
		t.Fatal("epochs differ beyond their requirement")
	}
	for _, c := range []*jwtauthnv3.JwtAuthentication{c1, j.base} { // served, default
		for name, p := range c.GetProviders() {
			if r := p.GetRemoteJwks(); r != nil && !r.GetAsyncFetch().GetFastListener() {
				t.Errorf("provider %s: a config without fast_listener (its init target would outlive it)", name)
			}
		}
	}
}

func checkJWTAuthnFilter(t *testing.T, r *Resources) {
	t.Helper()
	found := false
	for _, l := range r.Listeners {
		hcms, err := connectionManagers(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, hcm := range hcms {
			for _, f := range hcm.GetHttpFilters() {
				if f.GetName() == envoy.JwtAuthnName {
					t.Errorf("listener %s: an inline jwt_authn beside the discovered one", l.GetName())
				}
				if f.GetName() == r.JWTAuthn.Name() {
					found = discoveredJWTAuthn(f)
				}
			}
		}
	}
	if !found {
		t.Fatal("no discovered jwt_authn filter")
	}
}

// TestJWTAuthnNameFollowsConfig: a config change renames the filter (a new
// listener starts from its own default config, never the previous
// policy's ECDS config).
func TestJWTAuthnNameFollowsConfig(t *testing.T) {
	base := &jwtauthnv3.JwtAuthentication{Providers: map[string]*jwtauthnv3.JwtProvider{"corp": {Issuer: "a"}}}
	other := &jwtauthnv3.JwtAuthentication{Providers: map[string]*jwtauthnv3.JwtProvider{"corp": {Issuer: "b"}}}
	a, b, again := must(newJWTAuthn(base)), must(newJWTAuthn(other)), must(newJWTAuthn(base))
	if a.Name() == b.Name() || a.Name() != again.Name() {
		t.Fatalf("names %s %s %s", a.Name(), b.Name(), again.Name())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
