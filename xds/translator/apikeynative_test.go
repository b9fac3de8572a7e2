package translator

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// sampleKeyTable is the exceptions table of the golden ECDS resources.
var sampleKeyTable = KeyExceptions{Loaded: true, Fresh: true, Epoch: "Ep0chEp0chEp0ch0", Items: []KeyException{
	{ID: "k2", Tier: "pro", Roles: []string{"reader", "bad,role"}, ExpiresAt: time.Unix(1900000000, 0)},
	{ID: "k1", Revoked: true},
}}

func sampleKeyExtension(t *testing.T, k *KeyIdentity) *corev3.TypedExtensionConfig {
	t.Helper()
	e, err := k.Extension(sampleKeyTable)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKeyExtensionDeterministic(t *testing.T) {
	r := translateCase(t, "apikey-native")
	if r.KeyIdentity == nil {
		t.Fatal("no key identity on a gateway with native key routes")
	}
	reordered := sampleKeyTable
	reordered.Items = []KeyException{sampleKeyTable.Items[1], sampleKeyTable.Items[0]}
	a, b := sampleKeyExtension(t, r.KeyIdentity), sampleKeyExtension(t, r.KeyIdentity)
	c, err := r.KeyIdentity.Extension(reordered)
	if err != nil {
		t.Fatal(err)
	}
	opts := proto.MarshalOptions{Deterministic: true}
	ab, _ := opts.Marshal(a)
	bb, _ := opts.Marshal(b)
	cb, _ := opts.Marshal(c)
	if !bytes.Equal(ab, bb) || !bytes.Equal(ab, cb) {
		t.Fatal("the same table gave different ECDS resources")
	}
	if a.GetName() != KeyIdentityFilter {
		t.Fatalf("ECDS resource name %q, want %q", a.GetName(), KeyIdentityFilter)
	}
}

func TestKeyScriptTable(t *testing.T) {
	k := &KeyIdentity{headers: identityHeadersOrDefault(ir.IdentityHeaders{})}
	cases := []struct {
		name string
		x    KeyExceptions
		want []string
	}{
		{"not loaded refuses", KeyExceptions{Fresh: true}, []string{"local FRESH = false"}},
		{"stale refuses", KeyExceptions{Loaded: true}, []string{"local FRESH = false"}},
		{"fresh", KeyExceptions{Loaded: true, Fresh: true}, []string{"local FRESH = true"}},
		{"revoked", KeyExceptions{Loaded: true, Fresh: true, Items: []KeyException{{ID: "a", Revoked: true}}},
			[]string{`local RAW = "a\009r\009\009\009\010"`}},
		{"invalid role dropped, expiry in seconds", sampleKeyTable,
			[]string{`k2\009u\009pro\009reader\0091900000000\010`}},
		{"a tier with a control character makes the entry unusable", KeyExceptions{Loaded: true, Fresh: true,
			Items: []KeyException{{ID: "a", Tier: "p\nro"}}}, []string{`local RAW = "a\009m\009\009\009\010"`}},
		{"an id with a control character is left out", KeyExceptions{Loaded: true, Fresh: true,
			Items: []KeyException{{ID: "a\tb", Revoked: true}}}, []string{`local RAW = ""`}},
		{"quoted", KeyExceptions{Loaded: true, Fresh: true, Items: []KeyException{{ID: "a\"\\é", Tier: "t"}}},
			[]string{`a\034\092\195\169\009u\009t\009\009\010`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := k.script(tc.x)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("script lacks %q:\n%s", w, s[:min(len(s), 600)])
				}
			}
		})
	}
}

func TestAuthPathsKeyNative(t *testing.T) {
	tc := loadCase(t, "apikey-native")
	gw, _ := tc.Config.Gateway(tc.Gateway)
	got := map[string]RouteAuthPath{}
	for _, p := range authPaths(&tc.Config, &gw, true) {
		got[p.Route] = p
	}
	if p := got["search"]; p.Path != AuthPathEnvoyKey {
		t.Errorf("search (apiKey only): %+v, want %s", p, AuthPathEnvoyKey)
	}
	if p := got["orders"]; p.Path != AuthPathExtAuthz || p.Reason != "accepts apiKey, jwt: no JWT provider" {
		t.Errorf("orders (apiKey, jwt, no JWT provider): %+v, want ext_authz with the reason", p)
	}
	for _, p := range authPaths(&tc.Config, &gw, false) {
		if p.Path == AuthPathEnvoyKey {
			t.Errorf("%s on the native key path without a signer", p.Route)
		}
	}
}

// TestKeyRouteFailsClosed: on a native key route rbac refuses a verified
// key the key identity script did not accept (the script did not run:
// fail closed with 503), and ext_authz is skipped only for a request whose
// credential an identity script accepted (the native marker).
func TestKeyRouteFailsClosed(t *testing.T) {
	n := &nativeJWT{keyHeader: "x-api-key"}
	ps := n.keyPolicies(ir.RouteAuth{Methods: []string{ir.MethodAPIKey}, Roles: []string{"admin"}})
	for _, name := range []string{policyKeyAmbiguous, policyKeyUnchecked, policyRole} {
		p, ok := ps[name]
		if !ok {
			t.Fatalf("no %s policy", name)
		}
		// Every policy applies to a verified key only: opaque keys and
		// requests without a key go on to ext_authz, which decides them.
		if first := p.GetAndIds().GetIds()[0]; !proto.Equal(first, keyVerified()) {
			t.Errorf("%s does not start with the verified-key condition: %v", name, p)
		}
	}
	m := nativeMarkerMatcher()
	if m.GetInvert() || m.GetFilter() != "envoy.filters.http.ext_authz" || m.GetPath()[0].GetKey() != nativeMarkerKey {
		t.Fatalf("native marker matcher %v", m)
	}
	r := translateCase(t, "apikey-native")
	if !strings.Contains(renderedListeners(t, r), `"filter_enabled_metadata"`) {
		t.Fatal("ext_authz has no filter_enabled_metadata on a gateway with native key routes")
	}
}

func renderedListeners(t *testing.T, r *Resources) string {
	t.Helper()
	var b strings.Builder
	for _, l := range r.Listeners {
		j, err := envoy.JSON(l)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
	}
	return b.String()
}
