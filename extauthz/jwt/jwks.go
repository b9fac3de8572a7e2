package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v4/jwa"
	"github.com/lestrrat-go/jwx/v4/jwk"
)

const (
	// fetchTimeout bounds one JWKS download.
	fetchTimeout = 5 * time.Second
	// maxJWKSBytes caps a downloaded JWKS document.
	maxJWKSBytes = 1 << 20
	// maxJWKSKeys caps the entries of a JWKS that are parsed at all.
	maxJWKSKeys = 1000
	// maxValidatorBytes caps a remembered ETag or Last-Modified: a longer
	// one is ignored, as if the response had none.
	maxValidatorBytes = 1 << 10
)

var (
	errRefreshRateLimited = errors.New("jwks refresh rate-limited")
	errClosed             = errors.New("verifier closed")
	errUnexpected304      = errors.New("get: status 304 to a request with no remembered body")
)

// pubKey is one verification key of a provider's JWKS.
type pubKey struct {
	kid string
	alg string // the JWK's "alg"; "" when the key is not restricted to one
	kty string // "RSA", "EC" or "OKP"
	crv string // "P-256", "P-384", "P-521" or "Ed25519"; "" for RSA
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether k may verify a signature made with alg.
func (k *pubKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	req, ok := algorithmKey(alg)
	return ok && !req.hmac && req.kty == k.kty && req.crv == k.crv
}

// keySet is an immutable parsed JWKS.
type keySet struct {
	all   []*pubKey
	byKid map[string][]*pubKey
}

// candidates returns the keys to try for a token with kid and alg (each
// still to be checked with fits), and whether the set knows the token's key
// at all: a key with that kid, or for a token without kid any key that fits
// alg.
func (s *keySet) candidates(kid, alg string) ([]*pubKey, bool) {
	if kid != "" {
		keys, ok := s.byKid[kid]
		return keys, ok
	}
	return s.all, slices.ContainsFunc(s.all, func(k *pubKey) bool { return k.fits(alg) })
}

// withdrawn reports whether a key of s is missing from next, by kid and
// key material.
func (s *keySet) withdrawn(next *keySet) bool {
	for _, k := range s.all {
		still := slices.ContainsFunc(next.all, func(n *pubKey) bool {
			eq, ok := n.key.(interface{ Equal(crypto.PublicKey) bool })
			return n.kid == k.kid && ok && eq.Equal(k.key)
		})
		if !still {
			return true
		}
	}
	return false
}

// parseKeySet parses a JWKS (or a single JWK) and keeps the keys that can
// verify one of the algorithms allowed: public RSA, EC and Ed25519 keys
// whose "use" is "sig" or absent and whose "key_ops", if any, include
// "verify". Other entries (symmetric keys above all: HS* tokens are only
// ever verified with the configured secret) are skipped.
func parseKeySet(data []byte, allowed map[string]jwa.SignatureAlgorithm) (*keySet, error) {
	set, err := jwk.Parse(data, jwk.WithMaxKeys(maxJWKSKeys))
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	ks := &keySet{byKid: make(map[string][]*pubKey)}
	for _, k := range set.All() {
		pk := toPubKey(k)
		if pk == nil || !fitsAny(pk, allowed) {
			continue
		}
		ks.all = append(ks.all, pk)
		if pk.kid != "" {
			ks.byKid[pk.kid] = append(ks.byKid[pk.kid], pk)
		}
	}
	if len(ks.all) == 0 {
		return nil, errors.New("jwks has no usable signature verification key")
	}
	return ks, nil
}

func fitsAny(k *pubKey, allowed map[string]jwa.SignatureAlgorithm) bool {
	for alg := range allowed {
		if k.fits(alg) {
			return true
		}
	}
	return false
}

// toPubKey converts a JWK to a verification key, nil when it is not one.
func toPubKey(k jwk.Key) *pubKey {
	if jwk.IsUnsupportedKey(k) {
		return nil
	}
	if use, ok := k.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return nil
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil
	}
	raw, err := jwk.PublicRawKeyOf(k)
	if err != nil {
		return nil
	}
	pk := &pubKey{key: raw}
	switch key := raw.(type) {
	case *rsa.PublicKey:
		pk.kty = "RSA"
	case *ecdsa.PublicKey:
		pk.kty, pk.crv = "EC", key.Curve.Params().Name
	case ed25519.PublicKey:
		pk.kty, pk.crv = "OKP", "Ed25519"
	default:
		return nil // symmetric keys, X25519 and the like
	}
	pk.kid, _ = k.KeyID()
	if alg, ok := k.Algorithm(); ok {
		pk.alg = alg.String()
	}
	return pk
}

// remoteJWKS is the fetch state of a provider whose JWKS is served at uri.
type remoteJWKS struct {
	uri string

	mu     sync.Mutex
	flight *flight   // the fetch under way, nil when none
	last   time.Time // when the last fetch started
	held   *heldJWKS // the body of the provider's keys; nil when none, unknown, or after a failed fetch
}

// heldJWKS is the JWKS body whose keys a provider holds, with the
// validators of the response that carried it (each "" when absent or
// longer than maxValidatorBytes). It is immutable.
type heldJWKS struct {
	body               []byte
	etag, lastModified string
}

// validated reports whether a conditional request can revalidate h.
func (h *heldJWKS) validated() bool {
	return h != nil && (h.etag != "" || h.lastModified != "")
}

// newHeld returns the heldJWKS of body served with etag and lastModified,
// dropping a validator longer than maxValidatorBytes.
func newHeld(body []byte, etag, lastModified string) *heldJWKS {
	if len(etag) > maxValidatorBytes {
		etag = ""
	}
	if len(lastModified) > maxValidatorBytes {
		lastModified = ""
	}
	return &heldJWKS{body: body, etag: etag, lastModified: lastModified}
}

// flight is one JWKS fetch that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// refresh fetches p's JWKS or joins the fetch under way, and waits for it
// or for ctx. Unless force is set (the periodic refresh), a new fetch
// starts at most once per MinRefreshGap: within the gap refresh returns
// errRefreshRateLimited at once. The periodic refresh is conditional (see
// fetch); the others (an unknown kid, the first keys) are not: an unknown
// kid asks the server, or a cache before it, for the whole JWKS, so a
// cache that wrongly answers 304 cannot hide a rotation from it (a caller
// that joins a periodic fetch under way gets that fetch's answer).
func (v *Verifier) refresh(ctx context.Context, p *provider, force bool) error {
	r := p.remote
	r.mu.Lock()
	f := r.flight
	if f == nil {
		now := v.now()
		if !force && !r.last.IsZero() && now.Sub(r.last) < v.minRefreshGap {
			r.mu.Unlock()
			return errRefreshRateLimited
		}
		f = &flight{done: make(chan struct{})}
		// The fetch runs on its own goroutine so that a caller whose
		// context ends does not cut it short for the others.
		if !v.spawn(func() { v.runFlight(p, f, force) }) {
			r.mu.Unlock()
			return errClosed
		}
		r.flight, r.last = f, now
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *Verifier) runFlight(p *provider, f *flight, conditional bool) {
	f.err = v.fetch(p, conditional)
	p.remote.mu.Lock()
	p.remote.flight = nil
	p.remote.mu.Unlock()
	close(f.done)
}

// fetch downloads and installs p's JWKS. On failure p keeps its keys.
//
// When conditional is set and p's keys came from a body served with an
// ETag or a Last-Modified, the request carries If-None-Match and
// If-Modified-Since, and a 304 Not Modified is a successful fetch of that
// same body: p keeps its keys (no parse, no purge) and the store records
// the body as just fetched. A 304 to any other request is a failed fetch.
// A failed fetch forgets the validators: the next one is unconditional (a
// server that fails conditional requests, or answers them wrongly, costs
// one full download, not every refresh).
func (v *Verifier) fetch(p *provider, conditional bool) error {
	ctx, cancel := context.WithTimeout(v.life, fetchTimeout)
	defer cancel()
	r := p.remote
	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	var cond *heldJWKS
	if conditional && held.validated() {
		cond = held
	}
	got, err := v.download(ctx, r.uri, cond)
	if err == nil && got == cond { // 304 Not Modified
		return v.revalidated(p, got)
	}
	var ks *keySet
	if err == nil {
		ks, err = parseKeySet(got.body, p.algs)
	}
	v.metrics.JWKSRefresh(p.name, err == nil)
	if err != nil {
		r.mu.Lock()
		r.held = nil // p keeps its keys, but no 304 is taken for them
		r.mu.Unlock()
		return v.fetchFailed(p, err)
	}
	v.install(p, got, ks)
	return nil
}

// revalidated records a 304 Not Modified to p's conditional fetch of held,
// the body of its keys: a successful fetch of held again.
func (v *Verifier) revalidated(p *provider, held *heldJWKS) error {
	v.metrics.JWKSRefresh(p.name, true)
	if v.jwks != nil {
		storeHeld(v.jwks, p.remote.uri, held)
	}
	v.log.Debug("jwt: JWKS not modified", "provider", p.name)
	return nil
}

// fetchFailed logs and records p's failed fetch, and returns its error.
func (v *Verifier) fetchFailed(p *provider, err error) error {
	v.log.Warn("jwt: JWKS refresh failed; keeping the cached keys", "provider", p.name, "error", err)
	if f, ok := v.jwks.(JWKSFailures); ok && v.life.Err() == nil { // not a fetch Close cut short
		f.Failed(p.remote.uri)
	}
	return fmt.Errorf("jwks of provider %s: %w", p.name, err)
}

// install gives p the keys ks parsed from got, just fetched.
func (v *Verifier) install(p *provider, got *heldJWKS, ks *keySet) {
	if v.jwks != nil {
		storeHeld(v.jwks, p.remote.uri, got)
	}
	p.remote.mu.Lock()
	p.remote.held = got
	p.remote.mu.Unlock()
	if old := p.keys.Swap(ks); old != nil && old.withdrawn(ks) {
		// Tokens verified with a withdrawn key must not outlive it.
		v.cache.purge()
		if v.keysWithdrawn != nil {
			v.keysWithdrawn(p.name)
		}
	}
	v.log.Debug("jwt: JWKS refreshed", "provider", p.name, "keys", len(ks.all))
}

// download GETs uri. With cond it asks for the body only if it is no
// longer cond's (If-None-Match, If-Modified-Since) and returns cond itself
// on a 304 Not Modified; a 304 to a request without cond is
// errUnexpected304. Otherwise it returns the body of a 200 (at most
// maxJWKSBytes) with the response's validators.
func (v *Verifier) download(ctx context.Context, uri string, cond *heldJWKS) (*heldJWKS, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if cond != nil {
		setIf(req.Header, "If-None-Match", cond.etag)
		setIf(req.Header, "If-Modified-Since", cond.lastModified)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cond != nil:
		return cond, nil
	case resp.StatusCode == http.StatusNotModified:
		return nil, errUnexpected304
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("get: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks larger than %d bytes", maxJWKSBytes)
	}
	return newHeld(body, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")), nil
}

// setIf sets header name to value unless value is "".
func setIf(h http.Header, name, value string) {
	if value != "" {
		h.Set(name, value)
	}
}

// maxDuration is the longest time.Duration: Load's "any age".
const maxDuration = time.Duration(1<<63 - 1)

// seed gives remote provider p the keys of the JWKS store's body for its
// URI (one fetched within its refresh interval, plus a fetch's timeout, by another verifier of the
// process, or, with JWKSFailures, an older one when every fetch since
// failed), if any and if it parses for p's algorithms: WaitKeys then has
// nothing to wait for, and the background refresh replaces them.
func (v *Verifier) seed(p *provider) {
	if v.jwks == nil || p.remote == nil {
		return
	}
	// The interval plus a fetch: a refreshing verifier stores a body at
	// least that often.
	held := loadHeld(v.jwks, p.remote.uri, p.refresh+fetchTimeout)
	if f, ok := v.jwks.(JWKSFailures); ok && held == nil && f.FailedWithin(p.remote.uri, 2*(p.refresh+fetchTimeout)) {
		// The endpoint has been failing since that body: every verifier
		// of the process that fetched it still holds its keys (a failed
		// refresh keeps them), so a new one must not refuse what they
		// admit. Twice the interval: a failing endpoint is retried at
		// least once per refresh interval plus the fetch's timeout.
		held = loadHeld(v.jwks, p.remote.uri, maxDuration)
	}
	if held == nil {
		return
	}
	if ks, err := parseKeySet(held.body, p.algs); err == nil {
		p.keys.Store(ks)
		p.remote.held = held // its validators make the first refresh conditional
	}
}

// loadHeld loads uri's body from s, with its validators when s keeps them
// (JWKSValidators); nil when s has none within maxAge.
func loadHeld(s JWKSStore, uri string, maxAge time.Duration) *heldJWKS {
	if vs, ok := s.(JWKSValidators); ok {
		body, etag, lastModified := vs.LoadValidated(uri, maxAge)
		if body == nil {
			return nil
		}
		return newHeld(body, etag, lastModified)
	}
	if body := s.Load(uri, maxAge); body != nil {
		return &heldJWKS{body: body}
	}
	return nil
}

// storeHeld stores h, just fetched from uri, in s, with its validators
// when s keeps them (JWKSValidators).
func storeHeld(s JWKSStore, uri string, h *heldJWKS) {
	if vs, ok := s.(JWKSValidators); ok {
		vs.StoreValidated(uri, h.body, h.etag, h.lastModified)
		return
	}
	s.Store(uri, h.body)
}

// Fetching reports whether a fetch of some provider's remote JWKS is under
// way: a Verify that returned jwks_unavailable because its context ended
// while it waited would be decided by that fetch (a caller that decides
// without waiting may hold the request until the fetch ends, then Verify
// again with a context that may wait: it joins the fetch, or sees its
// result at once).
func (v *Verifier) Fetching() bool {
	for _, p := range v.providers {
		if p.remote == nil {
			continue
		}
		p.remote.mu.Lock()
		f := p.remote.flight
		p.remote.mu.Unlock()
		if f != nil {
			return true
		}
	}
	return false
}

// WaitKeys waits, until ctx ends, for the first fetch of every remote
// JWKS whose keys were never loaded: it joins the fetch under way (Start's)
// or starts one, unless one was started within MinRefreshGap. It returns
// the first provider's error (the fetch failed, or ctx ended first); the
// fetches go on in the background either way. A caller that decides
// without waiting for the network (a Verify with an ended context) calls
// it once before serving, as jwt_authn warms its listener until its
// first fetch completes. A provider whose endpoint's last fetch in the
// process failed within its refresh interval plus a fetch's timeout (JWKSFailures) is not waited for:
// its error is returned at once and its fetch goes on in the background.
func (v *Verifier) WaitKeys(ctx context.Context) error {
	var first error
	for _, p := range v.providers {
		if p.remote == nil || p.keys.Load() != nil {
			continue
		}
		// A failing endpoint's fetches end at most an interval plus a
		// fetch's timeout apart (refreshLoop retries within the interval).
		if f, ok := v.jwks.(JWKSFailures); ok && f.FailedWithin(p.remote.uri, p.refresh+fetchTimeout) {
			if first == nil {
				first = fmt.Errorf("jwks of provider %s not loaded: its last fetch failed", p.name)
			}
			continue
		}
		if err := v.refresh(ctx, p, false); err != nil && first == nil {
			first = fmt.Errorf("jwks of provider %s not loaded: %w", p.name, err)
		}
	}
	return first
}

// refreshLoop fetches p's JWKS now and then every p.refresh until ctx or
// the verifier ends. After a failure it retries sooner: after
// MinRefreshGap, doubling up to p.refresh.
func (v *Verifier) refreshLoop(ctx context.Context, p *provider) {
	failures := 0
	for {
		wait := p.refresh
		if err := v.refresh(ctx, p, true); err != nil {
			failures++
			wait = min(wait, v.minRefreshGap<<min(failures-1, 16))
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-v.life.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
