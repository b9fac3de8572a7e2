package jwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startedVerifier returns a Verifier of srv's provider, started, after its
// initial JWKS fetch.
func startedVerifier(t *testing.T, srv *jwksServer, clock *fakeClock, opts Options) *Verifier {
	t.Helper()
	opts.Now = clock.Now
	v := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	// Keys are installed before the fetch's flight ends: wait for both, or a
	// test's own refresh could join the initial (successful) flight.
	waitFor(t, "the initial JWKS fetch", func() bool {
		r := v.providers[0].remote
		r.mu.Lock()
		defer r.mu.Unlock()
		return v.providers[0].keys.Load() != nil && r.flight == nil
	})
	return v
}

func remoteToken(t *testing.T, clock *fakeClock, kid string, kv ...any) string {
	t.Helper()
	hdr := map[string]any{}
	if kid != "" {
		hdr["kid"] = kid
	}
	return sign(t, "RS256", sharedKeys().rsa, hdr, claimsAt(clock.Now(), remoteIssuer, kv...))
}

func TestJWKSKeyRotation(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})

	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k1")); err != nil {
		t.Fatalf("token of k1: %v", err)
	}
	// The issuer rotates: the same key material now published as k2.
	srv.serve(jwks(t, pubJWK(t, "k2", k.rsa, nil)))
	clock.Advance(DefaultMinRefreshGap)
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k2")); err != nil {
		t.Fatalf("token of the new kid k2 after rotation: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (initial + on demand)", got)
	}
}

func TestJWKSServerDownKeepsCachedKeys(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	m := &recMetrics{}
	v := startedVerifier(t, srv, clock, Options{CacheSize: -1, Metrics: m})

	srv.down.Store(true)
	if err := v.refresh(context.Background(), v.providers[0], true); err == nil {
		t.Fatal("refresh against a failing server succeeded")
	}
	srv.Close() // and now unreachable altogether
	if err := v.refresh(context.Background(), v.providers[0], true); err == nil {
		t.Fatal("refresh against a closed server succeeded")
	}
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k1")); err != nil {
		t.Fatalf("token of a cached key while the JWKS server is down: %v", err)
	}
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "")); err != nil {
		t.Fatalf("token without kid while the JWKS server is down: %v", err)
	}
	if ok, fails := m.refreshOK.Load(), m.fails.Load(); ok != 1 || fails != 2 {
		t.Fatalf("JWKSRefresh metrics: %d ok, %d failed; want 1, 2", ok, fails)
	}
}

func TestJWKSUnknownKidWhileServerDown(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	srv.down.Store(true)
	clock.Advance(DefaultMinRefreshGap)
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k2")); Reason(err) != ReasonJWKSUnavailable {
		t.Fatalf("unknown kid while the JWKS server fails: %v, want %s", err, ReasonJWKSUnavailable)
	}
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k1")); err != nil {
		t.Fatalf("known kid while the JWKS server fails: %v", err)
	}
}

func TestJWKSRefreshWaitEndsWithContext(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	clock.Advance(DefaultMinRefreshGap)
	release := make(chan struct{})
	defer close(release)
	srv.hold.Store(&release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, remoteToken(t, clock, "k2"))
	if Reason(err) != ReasonJWKSUnavailable || time.Since(start) > 2*time.Second {
		t.Fatalf("Verify with a held fetch: %v after %v, want %s at the context's end", err, time.Since(start), ReasonJWKSUnavailable)
	}
}

// TestJWKSFetching: Fetching is true exactly while a fetch is under way,
// the one a Verify with an ended context started and left.
func TestJWKSFetching(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	if v.Fetching() {
		t.Fatal("Fetching after the initial fetch ended")
	}
	clock.Advance(DefaultMinRefreshGap)
	release := make(chan struct{})
	srv.hold.Store(&release)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ended, remoteToken(t, clock, "k2")); Reason(err) != ReasonJWKSUnavailable {
		t.Fatalf("Verify of an unknown kid with an ended context: %v, want %s", err, ReasonJWKSUnavailable)
	}
	if !v.Fetching() {
		t.Fatal("Fetching false while the fetch the Verify started is held")
	}
	srv.serve(jwks(t, pubJWK(t, "k1", k.rsa, nil), pubJWK(t, "k2", k.rsa, nil)))
	close(release)
	waitFor(t, "the fetch's end", func() bool { return !v.Fetching() })
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "k2")); err != nil {
		t.Fatalf("Verify after the fetch: %v", err)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, "")
	srv.down.Store(true)
	v := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{Now: clock.Now})
	v.Start(context.Background()) // the initial fetch fails: not fatal
	_, err := v.Verify(context.Background(), remoteToken(t, clock, "k1"))
	if Reason(err) != ReasonJWKSUnavailable {
		t.Fatalf("Verify with no JWKS ever loaded: %v, want %s", err, ReasonJWKSUnavailable)
	}
}

func TestJWKSUnknownKidRefreshIsSingleFlight(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	clock.Advance(DefaultMinRefreshGap)

	// Hold the next fetch until every caller is waiting on it.
	release := make(chan struct{})
	srv.hold.Store(&release)
	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		tok := remoteToken(t, clock, "unknown", "jti", fmt.Sprint(i))
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	waitFor(t, "the on-demand fetch", func() bool { return srv.fetches.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // let the other callers queue up
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if Reason(err) != ReasonUnknownKID {
			t.Fatalf("Verify: %v, want %s", err, ReasonUnknownKID)
		}
	}
	if got := srv.fetches.Load() - 1; got != 1 {
		t.Fatalf("%d concurrent unknown-kid verifications made %d fetches, want 1", callers, got)
	}
}

func TestJWKSUnknownKidRefreshIsRateLimited(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	clock.Advance(DefaultMinRefreshGap)

	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "other-1")); Reason(err) != ReasonUnknownKID {
		t.Fatalf("first unknown kid: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("first unknown kid: %d fetches, want 2 (initial + on demand)", got)
	}
	clock.Advance(DefaultMinRefreshGap - time.Second)
	srv.serve(jwks(t, pubJWK(t, "k1", k.rsa, nil), pubJWK(t, "other-2", k.rsa, nil)))
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "other-2")); Reason(err) != ReasonUnknownKID {
		t.Fatalf("second unknown kid within MinRefreshGap: %v, want %s", err, ReasonUnknownKID)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("second unknown kid within MinRefreshGap fetched: %d fetches, want 2", got)
	}
	clock.Advance(time.Second)
	if _, err := v.Verify(context.Background(), remoteToken(t, clock, "other-2")); err != nil {
		t.Fatalf("unknown kid after MinRefreshGap: %v", err)
	}
	if got := srv.fetches.Load(); got != 3 {
		t.Fatalf("unknown kid after MinRefreshGap: %d fetches, want 3", got)
	}
}

func TestJWKSWithdrawnKeyPurgesCache(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := startedVerifier(t, srv, clock, Options{})
	tok := remoteToken(t, clock, "k1")
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	srv.serve(jwks(t, pubJWK(t, "k2", k.rsaOther, nil)))
	if err := v.refresh(context.Background(), v.providers[0], true); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := v.Verify(context.Background(), tok); Reason(err) != ReasonUnknownKID {
		t.Fatalf("cached token of a withdrawn key: %v, want %s", err, ReasonUnknownKID)
	}
}

// TestJWKSWithdrawnKeyHook: KeysWithdrawn hears of a refresh that drops
// a key (after the purge), not of one that keeps every key.
func TestJWKSWithdrawnKeyHook(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	var mu sync.Mutex
	var told []string
	v := startedVerifier(t, srv, clock, Options{KeysWithdrawn: func(p string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, p)
	}})
	for _, tc := range []struct {
		name string
		jwks string
		want []string
	}{
		{"same keys", jwks(t, pubJWK(t, "k1", k.rsa, nil)), nil},
		{"a key added", jwks(t, pubJWK(t, "k1", k.rsa, nil), pubJWK(t, "k2", k.rsaOther, nil)), nil},
		{"k1 withdrawn", jwks(t, pubJWK(t, "k2", k.rsaOther, nil)), []string{"remote"}},
	} {
		srv.serve(tc.jwks)
		if err := v.refresh(context.Background(), v.providers[0], true); err != nil {
			t.Fatalf("%s: refresh: %v", tc.name, err)
		}
		mu.Lock()
		got := slices.Clone(told)
		mu.Unlock()
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%s: KeysWithdrawn told %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestJWKSWaitKeys: WaitKeys returns once the initial fetch installed the
// keys, or with the fetch's error, or when its context ends (the fetch
// going on), and at once for inline keys or keys already loaded.
func TestJWKSWaitKeys(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	hold := make(chan struct{})
	srv.hold.Store(&hold)
	v := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := v.WaitKeys(short); err == nil {
		t.Fatal("WaitKeys while the fetch is held: nil, want the context's error")
	}
	time.AfterFunc(50*time.Millisecond, func() { close(hold) })
	if err := v.WaitKeys(context.Background()); err != nil || v.providers[0].keys.Load() == nil {
		t.Fatalf("WaitKeys: %v, keys loaded %t", err, v.providers[0].keys.Load() != nil)
	}
	if err := v.WaitKeys(context.Background()); err != nil || srv.fetches.Load() != 1 {
		t.Fatalf("WaitKeys with keys loaded: %v, %d fetches, want nil and 1", err, srv.fetches.Load())
	}
	down := newJWKSServer(t, "")
	down.down.Store(true)
	w := newTestVerifier(t, []ir.JWTProvider{remoteProvider(down)}, Options{})
	w.Start(ctx)
	if err := w.WaitKeys(context.Background()); err == nil {
		t.Fatal("WaitKeys with the JWKS endpoint down: nil, want the fetch's error")
	}
}

func TestJWKSFetchLimits(t *testing.T) {
	k := sharedKeys()
	big := `{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`
	tests := []struct {
		name string
		body string
	}{
		{"larger than 1 MiB", big},
		{"not JSON", "<html>"},
		{"no usable key", jwks(t, pubJWK(t, "s", []byte(hsSecret), nil), pubJWK(t, "e", k.rsa, map[string]any{"use": "enc"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.body)
			v := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{})
			if err := v.refresh(context.Background(), v.providers[0], true); err == nil {
				t.Fatal("refresh succeeded")
			}
			if v.providers[0].keys.Load() != nil {
				t.Fatal("keys were installed")
			}
		})
	}
}

func TestJWKSKeySelection(t *testing.T) {
	k := sharedKeys()
	clock := newClock()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	set := jwks(t,
		pubJWK(t, "small", small, nil),
		pubJWK(t, "enc", k.rsa, map[string]any{"use": "enc"}),
		pubJWK(t, "ops", k.rsa, map[string]any{"key_ops": []string{"encrypt"}}),
		pubJWK(t, "ps", k.rsa, map[string]any{"alg": "PS256"}),
		pubJWK(t, "oct", []byte(hsSecret), nil),
		pubJWK(t, "ok", k.rsa, map[string]any{"use": "sig", "alg": "RS256", "key_ops": []string{"verify"}}),
		map[string]any{"kty": "XYZ", "kid": "weird"},
	)
	srv := newJWKSServer(t, set)
	v := startedVerifier(t, srv, clock, Options{CacheSize: -1})
	tests := []struct {
		kid  string
		want string
	}{
		{"ok", ""},
		{"", ""},
		{"enc", ReasonUnknownKID},
		{"ops", ReasonUnknownKID},
		{"oct", ReasonUnknownKID},
		{"weird", ReasonUnknownKID},
		{"ps", ReasonUnknownKID},    // PS256 is not allowed: the key is unusable
		{"small", ReasonUnknownKID}, // RSA keys under 2048 bits are refused
	}
	for _, tt := range tests {
		t.Run("kid "+tt.kid, func(t *testing.T) {
			clock.Advance(DefaultMinRefreshGap)
			_, err := v.Verify(context.Background(), remoteToken(t, clock, tt.kid))
			if Reason(err) != tt.want {
				t.Fatalf("Verify: %v, want reason %q", err, tt.want)
			}
		})
	}
}

// memJWKS is a JWKSStore in memory.
type memJWKS struct {
	mu sync.Mutex
	m  map[string][]byte
	at map[string]time.Time
}

func (s *memJWKS) Load(uri string, maxAge time.Duration) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.at[uri]) > maxAge {
		return nil
	}
	return s.m[uri]
}

func (s *memJWKS) Store(uri string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[uri], s.at[uri] = body, time.Now()
}

// TestJWKSStoreSeedsTheNextVerifier: a verifier sharing a JWKSStore with
// one that fetched from the same URI starts with those keys, so WaitKeys
// returns at once while the endpoint does not answer (a new Envoy module
// configuration never holds Envoy's main thread then); a body older than
// RefreshInterval seeds nothing.
func TestJWKSStoreSeedsTheNextVerifier(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	store := &memJWKS{m: map[string][]byte{}, at: map[string]time.Time{}}
	first := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{JWKS: store})
	if err := first.WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	srv.hold.Store(&hold)
	t.Cleanup(func() { close(hold) })
	next := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{JWKS: store})
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := next.WaitKeys(short); err != nil || next.providers[0].keys.Load() == nil {
		t.Fatalf("seeded verifier: WaitKeys %v, keys loaded %t; want nil and true", err, next.providers[0].keys.Load() != nil)
	}
	store.mu.Lock()
	store.at[remoteProvider(srv).JWKSURI] = time.Now().Add(-2 * DefaultRefreshInterval)
	store.mu.Unlock()
	stale := newTestVerifier(t, []ir.JWTProvider{remoteProvider(srv)}, Options{JWKS: store})
	if stale.providers[0].keys.Load() != nil {
		t.Fatal("a body older than RefreshInterval seeded a verifier")
	}
}
