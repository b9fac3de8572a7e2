package extauthz

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// keyFixture is a Service over a key store that signs keys, and a Local
// deciding the same store's signed keys offline (its public key, epoch
// and exceptions table as the control plane serves them).
type keyFixture struct {
	store *apikey.MemoryStore
	svc   *Service
	local *Local
}

var keyPepper = []byte("unit-test-pepper-0123456789abcdef")

func newKeyFixture(t *testing.T) keyFixture {
	t.Helper()
	sig, err := apikey.NewSigner(keyPepper)
	if err != nil {
		t.Fatal(err)
	}
	store := apikey.NewMemoryStoreWithSigner(keyPepper, sig)
	f := keyFixture{store: store}
	f.svc = swapService(t, store, prometheus.NewRegistry(), &ir.Config{Auth: ir.Auth{
		APIKeys: &ir.APIKeys{Header: "x-api-key", Namespace: "partners"}}})
	f.local = f.newLocal(t, true)
	return f
}

// newLocal is a Local over the store's current exceptions.
func (f keyFixture) newLocal(t *testing.T, fresh bool) *Local {
	t.Helper()
	local, err := NewLocal(context.Background(), f.filterConfig(t, fresh), LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Close)
	return local
}

// filterConfig is the module's filter configuration with the store's
// current exceptions, as the control plane serves it.
func (f keyFixture) filterConfig(t *testing.T, fresh bool) envoymod.FilterConfig {
	t.Helper()
	x, err := f.store.Exceptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	k := &envoymod.Keys{PublicKey: base64.RawURLEncoding.EncodeToString(f.store.Signer().PublicKey()), Namespace: "partners", Fresh: fresh, Epoch: x.Epoch}
	for _, it := range x.Items {
		e := envoymod.KeyException{ID: it.ID, Revoked: it.Revoked, Tier: it.Tier, Roles: it.Roles}
		if !it.ExpiresAt.IsZero() {
			e.ExpiresAt = it.ExpiresAt.Unix()
		}
		k.Exceptions = append(k.Exceptions, e)
	}
	return envoymod.FilterConfig{IdentityHeaders: testIdentityHeaders, KeyHeader: "x-api-key", Keys: k}
}

func (f keyFixture) create(t *testing.T, rec apikey.Record) (string, apikey.Record) {
	t.Helper()
	key, stored, err := f.store.Create(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	return key, stored
}

func keyRoute(methods string, extra map[string]string) map[string]string {
	ext := map[string]string{contract.KeyRoute: "keys", contract.KeyMethods: methods}
	for k, v := range extra {
		ext[k] = v
	}
	return ext
}

// TestLocalDecidesSignedKeysAsCheck: the Local's offline verdict on a
// signed key is the service's with the store, byte for byte.
func TestLocalDecidesSignedKeysAsCheck(t *testing.T) {
	f := newKeyFixture(t)
	valid, _ := f.create(t, apikey.Record{Consumer: "acme", Tenant: "t1", Tier: "gold", Roles: []string{"user"},
		ExpiresAt: time.Now().Add(time.Hour)})
	revoked, r := f.create(t, apikey.Record{Consumer: "acme"})
	updated, u := f.create(t, apikey.Record{Consumer: "acme", Tier: "gold", Roles: []string{"user"}})
	ctx := context.Background()
	if err := f.store.Revoke(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	tier, roles := "basic", []string{"admin"}
	if _, err := f.store.Update(ctx, u.ID, apikey.Change{Tier: &tier, Roles: &roles}); err != nil {
		t.Fatal(err)
	}
	other := newKeyFixture(t) // same signer, another epoch
	foreign, _ := other.create(t, apikey.Record{Consumer: "acme"})
	f.local = f.newLocal(t, true)
	parts := strings.Split(valid, ".")
	tampered := strings.Join([]string{parts[0], parts[1], parts[2], strings.Repeat("A", len(parts[3]))}, ".")
	tests := []struct {
		name    string
		ext     map[string]string
		headers map[string]string
		status  int
	}{
		{"valid in the key header", keyRoute("apiKey", nil), map[string]string{"x-api-key": valid}, 0},
		{"valid as ApiKey, scheme in lower case", keyRoute("apiKey", nil), map[string]string{"authorization": "apikey " + valid}, 0},
		{"valid on a mixed route, forwarded", keyRoute("jwt,apiKey", map[string]string{contract.KeyForwardCredentials: "true"}),
			map[string]string{"x-api-key": valid, contract.HeaderClientIP: "10.0.0.1"}, 0},
		{"role held", keyRoute("apiKey", map[string]string{contract.KeyRoles: "user"}), map[string]string{"x-api-key": valid}, 0},
		{"role missing", keyRoute("apiKey", map[string]string{contract.KeyRoles: "admin"}), map[string]string{"x-api-key": valid}, 403},
		{"scope needed", keyRoute("apiKey", map[string]string{contract.KeyScopes: "read"}), map[string]string{"x-api-key": valid}, 403},
		{"updated: the exception's tier and roles", keyRoute("apiKey", map[string]string{contract.KeyRoles: "admin"}),
			map[string]string{"x-api-key": updated}, 0},
		{"revoked", keyRoute("apiKey", nil), map[string]string{"x-api-key": revoked}, 401},
		{"another epoch", keyRoute("apiKey", nil), map[string]string{"x-api-key": foreign}, 401},
		{"tampered", keyRoute("apiKey", nil), map[string]string{"x-api-key": tampered}, 401},
		{"malformed", keyRoute("apiKey", nil), map[string]string{"x-api-key": "tg.a.b"}, 401},
		{"key on a jwt route", keyRoute("jwt", nil), map[string]string{"x-api-key": valid}, 401},
		{"key and authorization", keyRoute("apiKey", nil), map[string]string{"x-api-key": valid, "authorization": "Bearer a.b.c"}, 401},
		{"repeated key header", keyRoute("apiKey", nil), map[string]string{"x-api-key": valid + "," + valid}, 401},
		{"opaque key on a jwt route", keyRoute("jwt", nil), map[string]string{"x-api-key": "tg_0123456789"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := decisionFromCheck(mustCheck(t, f.svc, checkReq(tt.ext, "GET", tt.headers)))
			got := f.local.Decide(ctx, tt.ext, tt.headers)
			if got.Pass || got.Status != tt.status || want.Status != tt.status {
				t.Fatalf("local %d (%s, pass %t), service %d (%s), want %d", got.Status, got.Reason, got.Pass,
					want.Status, want.Reason, tt.status)
			}
			compareDecisions(t, got, want)
		})
	}
}

// TestLocalSignedKeyDecision: an allowed signed key carries its roles and
// its expiry (a far one without), for the module's table; a table that
// is not fresh refuses with the service's 503.
func TestLocalSignedKeyDecision(t *testing.T) {
	f := newKeyFixture(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	withExp, _ := f.create(t, apikey.Record{Consumer: "acme", Roles: []string{"user"}, ExpiresAt: exp})
	noExp, _ := f.create(t, apikey.Record{Consumer: "acme"})
	ctx := context.Background()
	d := f.local.Decide(ctx, keyRoute("apiKey", nil), map[string]string{"x-api-key": withExp})
	if d.Status != 0 || !d.Expiry.Equal(exp) || !slices.Equal(d.Roles, []string{"user"}) {
		t.Fatalf("%+v, want allowed until %v with roles [user]", d, exp)
	}
	d = f.local.Decide(ctx, keyRoute("apiKey", nil), map[string]string{"x-api-key": noExp})
	if d.Status != 0 || d.Expiry.Before(time.Now().Add(50*365*24*time.Hour)) || d.Expiry.Year() > 2200 {
		t.Fatalf("no expiry: %+v, want a far expiry within int64 nanoseconds", d)
	}
	stale := f.newLocal(t, false)
	d = stale.Decide(ctx, keyRoute("apiKey", nil), map[string]string{"x-api-key": noExp})
	want := `{"error":"unavailable","reason":"key_store_unavailable"}`
	if d.Status != 503 || d.Body != want {
		t.Fatalf("not fresh: %+v, want 503 %s", d, want)
	}
}

// TestLocalPassesOpaqueKeys: with signed keys configured, an API key in
// another form on a route that accepts keys passes undecided; elsewhere
// (and without Keys) it is decided as before.
func TestLocalPassesOpaqueKeys(t *testing.T) {
	f := newKeyFixture(t)
	opaque, _ := f.create(t, apikey.Record{Consumer: "acme", Format: apikey.FormatOpaque})
	without, err := NewLocal(context.Background(), envoymod.FilterConfig{IdentityHeaders: testIdentityHeaders,
		KeyHeader: "x-api-key"}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(without.Close)
	ctx := context.Background()
	tests := []struct {
		name    string
		local   *Local
		ext     map[string]string
		headers map[string]string
		pass    bool
		status  int
	}{
		{"key header", f.local, keyRoute("apiKey", nil), map[string]string{"x-api-key": opaque}, true, 0},
		{"ApiKey scheme", f.local, keyRoute("jwt,apiKey", nil), map[string]string{"authorization": "ApiKey " + opaque}, true, 0},
		{"garbage key", f.local, keyRoute("apiKey", nil), map[string]string{"x-api-key": "nonsense"}, true, 0},
		{"jwt-only route", f.local, keyRoute("jwt", nil), map[string]string{"x-api-key": opaque}, false, 401},
		{"no route requirement", f.local, map[string]string{}, map[string]string{"x-api-key": opaque}, false, 403},
		{"ambiguous", f.local, keyRoute("apiKey", nil), map[string]string{"x-api-key": opaque, "authorization": "Bearer x"}, false, 401},
		{"without Keys", without, keyRoute("apiKey", nil), map[string]string{"x-api-key": opaque}, false, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.local.Decide(ctx, tt.ext, tt.headers)
			if d.Pass != tt.pass || d.Status != tt.status {
				t.Fatalf("%+v, want pass %t status %d", d, tt.pass, tt.status)
			}
			if d.Pass && (d.Reason != "" || d.Set != nil || d.Remove != nil || d.Metadata != nil) {
				t.Fatalf("a pass decides nothing: %+v", d)
			}
		})
	}
}

// TestNewLocalRefusesBadKeys: a Keys whose public key is not an Ed25519
// key, or without a key header, refuses the configuration.
func TestNewLocalRefusesBadKeys(t *testing.T) {
	good := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, fc := range []envoymod.FilterConfig{
		{KeyHeader: "x-api-key", Keys: &envoymod.Keys{PublicKey: "short", Fresh: true, Epoch: "e"}},
		{Keys: &envoymod.Keys{PublicKey: good, Fresh: true, Epoch: "e"}},
	} {
		if l, err := NewLocal(context.Background(), fc, LocalOptions{Options: Options{Logger: quietLogger()}}); err == nil {
			l.Close()
			t.Errorf("NewLocal accepted %+v", *fc.Keys)
		}
	}
	l, err := NewLocal(context.Background(), envoymod.FilterConfig{KeyHeader: "x-api-key",
		Keys: &envoymod.Keys{PublicKey: good}}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatalf("a valid Keys refused: %v", err)
	}
	l.Close()
}
