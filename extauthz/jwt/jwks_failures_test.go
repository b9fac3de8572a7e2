package jwt

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestWaitKeysSkipsAFailingEndpoint: once a verifier's fetch from an
// endpoint failed, a new verifier of the same store does not wait for
// that endpoint (WaitKeys returns its error at once, the fetch goes on in
// the background); a store that records no failures still waits; a
// success clears the failure, and the next verifier is seeded.
func TestWaitKeysSkipsAFailingEndpoint(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	srv.down.Store(true)
	store := NewMemoryJWKS()
	providers := []ir.JWTProvider{remoteProvider(srv)}
	first := newTestVerifier(t, providers, Options{JWKS: store})
	if err := first.WaitKeys(context.Background()); err == nil {
		t.Fatal("WaitKeys on a failing endpoint: nil error")
	}
	hold := make(chan struct{})
	srv.hold.Store(&hold)
	wait := func(opts Options) (time.Duration, error) {
		v := newTestVerifier(t, providers, opts)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := v.WaitKeys(ctx)
		return time.Since(start), err
	}
	if took, err := wait(Options{JWKS: store}); err == nil || took > 100*time.Millisecond {
		t.Errorf("after a failed fetch: WaitKeys took %s (%v), want an error at once", took, err)
	}
	plain := &memJWKS{m: map[string][]byte{}, at: map[string]time.Time{}}
	if took, _ := wait(Options{JWKS: plain}); took < 250*time.Millisecond {
		t.Errorf("a store without failures: WaitKeys took %s, want it to wait for the fetch", took)
	}
	srv.hold.Store(nil)
	close(hold)
	srv.down.Store(false)
	if err := newTestVerifier(t, providers, Options{}).WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	ok := newTestVerifier(t, providers, Options{JWKS: store, MinRefreshGap: time.Nanosecond})
	if err := ok.refresh(context.Background(), ok.providers[0], true); err != nil {
		t.Fatal(err)
	}
	if store.FailedWithin(providers[0].JWKSURI, time.Hour) {
		t.Error("a successful fetch left the failure recorded")
	}
}

// TestSeedWhileTheEndpointFails: a body older than RefreshInterval seeds
// a new verifier when the endpoint's fetches have failed since (the
// process's other verifiers still hold those keys), and only then.
func TestSeedWhileTheEndpointFails(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	store := NewMemoryJWKS()
	providers := []ir.JWTProvider{remoteProvider(srv)}
	if err := newTestVerifier(t, providers, Options{JWKS: store}).WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	uri := providers[0].JWKSURI
	store.mu.Lock()
	b := store.bodies[uri]
	b.at = time.Now().Add(-2 * DefaultRefreshInterval)
	store.bodies[uri] = b
	store.mu.Unlock()
	if newTestVerifier(t, providers, Options{JWKS: store}).providers[0].keys.Load() != nil {
		t.Fatal("a stale body seeded a verifier though no fetch failed")
	}
	store.Failed(uri)
	if newTestVerifier(t, providers, Options{JWKS: store}).providers[0].keys.Load() == nil {
		t.Fatal("the endpoint failing since its last body: the new verifier has no keys")
	}
}
