package xds

import (
	"slices"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/xds/translator"
)

// withSecret returns ts's resources plus a certificate secret holding cert.
func withSecret(t *testing.T, ts *typeSet, cert string) *typeSet {
	t.Helper()
	r := resourcesOf(ts)
	r.Secrets = []*tlsv3.Secret{envoy.TLSCertificateSecret("tls/g/https/api", []byte(cert), []byte("key"))}
	out, err := newTypeSet(r, translator.KeyExceptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPlanGatewayRotatesSecretsAlone checks that a certificate rotation
// (same secret name, new content) is one step that changes only the
// secrets' version, and that secrets travel with the listeners.
func TestPlanGatewayRotatesSecretsAlone(t *testing.T) {
	base := gatewayTo(t, map[string]string{"/": "a"})
	prev, next := withSecret(t, base, "one"), withSecret(t, base, "two")
	p, err := planGateway("g", prev, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.steps) != 1 {
		t.Fatalf("rotation took %d steps, want 1", len(p.steps))
	}
	st := p.steps[0]
	if !slices.Contains(st.wait, resource.SecretType) {
		t.Errorf("the step waits for %v, not for secrets", st.wait)
	}
	for _, typ := range []resource.Type{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
		if st.set.of[typ].version != prev.of[typ].version {
			t.Errorf("%s version changed by a rotation", shortType(typ))
		}
	}
	if st.set.of[resource.SecretType].version == prev.of[resource.SecretType].version {
		t.Error("the secrets' version did not change")
	}
	if _, err := st.set.snapshot(); err != nil {
		t.Fatal(err)
	}
}

func TestPlanGatewayAddsSecretsWithListeners(t *testing.T) {
	prev := gatewayTo(t, map[string]string{"/": "a"})
	next := withSecret(t, prev, "one")
	p, err := planGateway("g", prev, next)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range p.steps {
		has := len(st.set.of[resource.SecretType].items) > 0
		if slices.Contains(st.wait, resource.ListenerType) != has {
			t.Errorf("step %d: secrets present %v, waits %v", i, has, st.wait)
		}
	}
	if len(p.steps) == 0 {
		t.Fatal("no step adds the secret")
	}
}
