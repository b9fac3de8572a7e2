package jwt

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// TestRefreshIntervalOfEachProvider: a provider's JWKSRefresh wins over
// Options.RefreshInterval, which wins over DefaultRefreshInterval (30 s);
// a negative JWKSRefresh is refused.
func TestRefreshIntervalOfEachProvider(t *testing.T) {
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", sharedKeys().rsa, nil)))
	own := remoteProvider(srv)
	own.Name, own.Issuer, own.JWKSRefresh = "own", "https://own.example", 7*time.Second
	providers := []ir.JWTProvider{remoteProvider(srv), own}
	if DefaultRefreshInterval != 30*time.Second {
		t.Errorf("DefaultRefreshInterval %s, want 30s (the documented withdrawal bound)", DefaultRefreshInterval)
	}
	for _, tc := range []struct {
		opt        time.Duration
		want, ownW time.Duration
	}{{0, DefaultRefreshInterval, 7 * time.Second}, {time.Second, time.Second, 7 * time.Second}} {
		v := newTestVerifier(t, providers, Options{RefreshInterval: tc.opt})
		if got := v.byIssuer[remoteIssuer].refresh; got != tc.want {
			t.Errorf("RefreshInterval %s: provider without jwksRefresh refreshes every %s, want %s", tc.opt, got, tc.want)
		}
		if got := v.byIssuer[own.Issuer].refresh; got != tc.ownW {
			t.Errorf("RefreshInterval %s: provider with jwksRefresh 7s refreshes every %s, want %s", tc.opt, got, tc.ownW)
		}
	}
	own.JWKSRefresh = -time.Second
	if _, err := NewVerifier([]ir.JWTProvider{own}, Options{}); err == nil {
		t.Error("a negative jwksRefresh was accepted")
	}
}

// TestWithdrawnKeyRefusedWithinTheRefresh: with the background refresh
// alone (no unknown kid asks for a fetch), a cached token whose key left
// the JWKS is refused within about one JWKSRefresh, and the JWKS is
// fetched about once per JWKSRefresh meanwhile.
func TestWithdrawnKeyRefusedWithinTheRefresh(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil), pubJWK(t, "k2", k.rsaOther, nil)))
	p := remoteProvider(srv)
	const every = 200 * time.Millisecond
	p.JWKSRefresh = every
	v := newTestVerifier(t, []ir.JWTProvider{p}, Options{})
	if err := v.WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	tok := sign(t, "RS256", k.rsa, map[string]any{"kid": "k1"}, claimsAt(time.Now(), remoteIssuer))
	for range 2 { // the second from the cache
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	checks, fetches := v.sigChecks.Load(), srv.fetches.Load()
	if checks != 1 {
		t.Fatalf("%d signature checks for one token verified twice, want 1 (cached)", checks)
	}
	srv.serve(jwks(t, pubJWK(t, "k2", k.rsaOther, nil)))
	start := time.Now()
	waitFor(t, "the cached token of the withdrawn key refused", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return Reason(err) == ReasonUnknownKID
	})
	took := time.Since(start)
	// One interval, the fetch and a scheduling margin for a loaded machine.
	if took > every+time.Second {
		t.Errorf("refused %s after the withdrawal, want within about %s", took, every)
	}
	if n := srv.fetches.Load() - fetches; n > int64(took/every)+2 {
		t.Errorf("%d fetches in %s, want about one per %s", n, took, every)
	}
	t.Logf("refused %s after the withdrawal (jwksRefresh %s)", took.Round(time.Millisecond), every)
}

// TestCacheLifetimeIsTheProviderRefresh: a verification is cached for the
// provider's JWKSRefresh (a token is verified again once it passed), not
// for Options.RefreshInterval.
func TestCacheLifetimeIsTheProviderRefresh(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	p := remoteProvider(srv)
	p.JWKSRefresh = 10 * time.Second
	clock := newClock()
	v := newTestVerifier(t, []ir.JWTProvider{p}, Options{Now: clock.Now, RefreshInterval: time.Hour})
	if err := v.WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := remoteToken(t, clock, "k1")
	for _, step := range []struct {
		advance time.Duration
		checks  int64
	}{{0, 1}, {9 * time.Second, 1}, {time.Second, 2}} {
		clock.Advance(step.advance)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		if got := v.sigChecks.Load(); got != step.checks {
			t.Fatalf("after %s more: %d signature checks, want %d", step.advance, got, step.checks)
		}
	}
}

// TestVerifyCachePutAfterPurge: a verification that read the cache's
// generation before a purge (and so maybe the withdrawn keys) is not
// cached after it; one that read it after is.
func TestVerifyCachePutAfterPurge(t *testing.T) {
	c := newVerifyCache(100)
	k := keyOf("token")
	gen := c.generation()
	c.purge()
	c.put(&k, &Identity{UserID: "u"}, 10, 0, gen)
	if c.get(&k, 0) != nil {
		t.Fatal("a verification from before a purge was cached after it")
	}
	c.put(&k, &Identity{UserID: "u"}, 10, 0, c.generation())
	if c.get(&k, 0) == nil {
		t.Fatal("a verification from after the purge was not cached")
	}
}
