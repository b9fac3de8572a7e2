package extauthz

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// keysConfig is the fixture's Local config over the store's current
// exceptions, with freshness fresh and epoch (the store's when "").
func (f keyFixture) keysConfig(t *testing.T, fresh bool, epoch string) envoymod.FilterConfig {
	t.Helper()
	x, err := f.store.Exceptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if epoch == "" {
		epoch = x.Epoch
	}
	k := &envoymod.Keys{PublicKey: base64.RawURLEncoding.EncodeToString(f.store.Signer().PublicKey()),
		Namespace: "partners", Fresh: fresh, Epoch: epoch}
	for _, it := range x.Items {
		e := envoymod.KeyException{ID: it.ID, Revoked: it.Revoked, Tier: it.Tier, Roles: it.Roles}
		if !it.ExpiresAt.IsZero() {
			e.ExpiresAt = it.ExpiresAt.Unix()
		}
		k.Exceptions = append(k.Exceptions, e)
	}
	return envoymod.FilterConfig{IdentityHeaders: testIdentityHeaders, KeyHeader: "x-api-key", Keys: k}
}

func (f keyFixture) derive(t *testing.T, prev *Local, cfg envoymod.FilterConfig) *Local {
	t.Helper()
	l, err := prev.Derive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// TestLocalKeptKeys: a successor keeps exactly the keys whose exception
// did not change (a revoked key and a key whose tier changed are left
// behind), decides the revoked one as revoked, and names an allowed key's
// id; a stale table, an epoch change or a predecessor without keys keeps
// none.
func TestLocalKeptKeys(t *testing.T) {
	f := newKeyFixture(t)
	a, ra := f.create(t, apikey.Record{Consumer: "acme", Tier: "gold"})
	_, rb := f.create(t, apikey.Record{Consumer: "acme", Tier: "gold"})
	_, rc := f.create(t, apikey.Record{Consumer: "acme", Tier: "gold"})
	_, rd := f.create(t, apikey.Record{Consumer: "acme", Tier: "gold"})
	if err := f.store.Revoke(context.Background(), rd.ID); err != nil { // an exception in both tables
		t.Fatal(err)
	}
	prev := f.newLocal(t, true)
	if err := f.store.Revoke(context.Background(), rb.ID); err != nil {
		t.Fatal(err)
	}
	next := f.derive(t, prev, f.keysConfig(t, true, ""))
	ids := []string{ra.ID, rb.ID, rc.ID, rd.ID, "unknown"}
	if got, want := next.KeptKeys(prev, ids), []string{ra.ID, rc.ID, rd.ID, "unknown"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v (all but the revoked %s)", got, want, rb.ID)
	}
	d := next.Decide(context.Background(), keyRoute("apiKey", nil), map[string]string{"x-api-key": a})
	if d.Status != 0 || d.KeyID != ra.ID {
		t.Fatalf("%+v, want allowed with KeyID %s", d, ra.ID)
	}
	stale := f.derive(t, prev, f.keysConfig(t, false, ""))
	cases := []struct {
		name       string
		prev, next *Local
	}{
		{"stale successor", prev, stale},
		{"another epoch", prev, f.derive(t, prev, f.keysConfig(t, true, "other-epoch"))},
		{"stale predecessor", stale, f.derive(t, stale, f.keysConfig(t, true, ""))},
	}
	for _, c := range cases {
		if got := c.next.KeptKeys(c.prev, ids); got != nil {
			t.Errorf("%s: kept %v, want none", c.name, got)
		}
	}
}

// TestOfflineSameException: every field of an exception counts.
func TestOfflineSameException(t *testing.T) {
	base := apikey.Exception{ID: "k1", Tier: "gold", Roles: []string{"a"}, ExpiresAt: time.Unix(100, 0).UTC()}
	changes := map[string]func(*apikey.Exception){
		"revoked": func(e *apikey.Exception) { e.Revoked = true },
		"tier":    func(e *apikey.Exception) { e.Tier = "basic" },
		"roles":   func(e *apikey.Exception) { e.Roles = []string{"a", "b"} },
		"expiry":  func(e *apikey.Exception) { e.ExpiresAt = time.Unix(101, 0).UTC() },
	}
	offline := func(xs ...apikey.Exception) *apikey.Offline {
		o, err := apikey.NewOffline(apikey.OfflineConfig{PublicKey: base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
			Epoch: "e", Fresh: true, Exceptions: xs})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	prev := offline(base)
	if !offline(base).SameException(prev, "k1") || !offline().SameException(offline(), "k1") {
		t.Fatal("equal exceptions (or none) differ")
	}
	if offline().SameException(prev, "k1") || prev.SameException(offline(), "k1") {
		t.Error("an exception added or removed is the same")
	}
	for name, change := range changes {
		x := base
		x.Roles = slices.Clone(base.Roles)
		change(&x)
		if offline(x).SameException(prev, "k1") {
			t.Errorf("%s changed: the same exception", name)
		}
	}
}

// TestLocalDeriveRefusesAnotherLineage: a config that differs in more than
// the exceptions table is not a successor.
func TestLocalDeriveRefusesAnotherLineage(t *testing.T) {
	f := newKeyFixture(t)
	cfg := f.keysConfig(t, true, "")
	cfg.KeyHeader = "x-other-key"
	if l, err := f.local.Derive(cfg); err == nil {
		l.Close()
		t.Fatal("derived across a key header change")
	}
	cfg = f.keysConfig(t, true, "")
	k := *cfg.Keys
	k.Namespace = "other"
	cfg.Keys = &k
	if l, err := f.local.Derive(cfg); err == nil {
		l.Close()
		t.Fatal("derived across a namespace change")
	}
}

// TestLocalDeriveSharesVerifiers: a successor fetches no JWKS, decides
// tokens with the predecessor's keys at once, and keeps them after the
// predecessor is closed; the verifiers stop with the last Local, after
// which nothing derives from them.
func TestLocalDeriveSharesVerifiers(t *testing.T) {
	iss := newIssuer(t, "https://idp.test")
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(iss.JWKS()))
	}))
	t.Cleanup(srv.Close)
	prev := remoteLocal(t, iss, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := prev.WaitKeys(ctx); err != nil {
		t.Fatal(err)
	}
	before := fetches.Load()
	next, err := prev.Derive(prev.base)
	if err != nil {
		t.Fatal(err)
	}
	prev.Close()
	headers := map[string]string{"authorization": "Bearer " + token(t, iss, "alice")}
	if d := next.Decide(context.Background(), jwtRoute(nil), headers); d.Status != 0 {
		t.Fatalf("successor after its predecessor closed: %d %s, want allowed", d.Status, d.Reason)
	}
	if got := fetches.Load(); got != before {
		t.Errorf("JWKS fetches %d → %d: the successor fetched", before, got)
	}
	next.Close()
	if l, err := next.Derive(next.base); err == nil {
		l.Close()
		t.Error("derived from closed verifiers")
	}
}
