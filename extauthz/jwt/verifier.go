// Package jwt verifies the bearer JSON Web Tokens of the ext_authz hot
// path against the policy's JWT providers (ir.JWTProvider).
//
// Contract:
//   - A Verifier serves one policy version and is safe for concurrent use.
//     Verify fails closed: anything it cannot positively verify is an
//     *Error with a short Reason (see the Reason* constants).
//   - Only compact JWS is accepted. The provider is chosen by the token's
//     "iss" (read before verification, trusted only after it); the token
//     is then verified with that provider's keys and allow-list only.
//     "none", algorithms outside the allow-list, "crit", and headers that
//     carry or point at keys ("jwk", "jku", "x5u", "x5c") are refused. HS*
//     tokens are verified with the provider's configured secret only, never
//     with JWKS material; asymmetric tokens only with JWKS keys of the
//     algorithm's key type and curve.
//   - "exp" is required; exp, nbf and iat are checked with the provider's
//     ClockSkew and exp - iat (or exp - now) with its MaxLifetime; "aud"
//     must name a configured audience when there are any.
//   - JWKS keys are read through an atomic pointer. A token naming an
//     unknown "kid" triggers one refresh per provider at a time, and at
//     most one per MinRefreshGap; a failed refresh keeps the cached keys.
//   - A remote JWKS is fetched every refresh interval of its provider
//     (ir.JWTProvider.JWKSRefresh, else RefreshInterval: 30 s by default).
//     A fetch that lacks a key the previous one had purges the whole
//     verification cache (and calls KeysWithdrawn): a token signed with a
//     withdrawn key is refused within one refresh interval (plus the
//     fetch) of the IdP's change, never later. A failed fetch keeps the
//     keys.
//   - Successful verifications are cached by the token's SHA-256 until
//     min(exp, now+the provider's refresh interval), so a repeated token
//     costs a hash and a map read. A verification that read the keys
//     before a purge is not cached after it. Failures are never cached.
//     Tokens and secrets are never logged.
package jwt

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Defaults of Options.
const (
	// DefaultRefreshInterval bounds how long a withdrawn key's tokens stay
	// admitted (see the package contract); the control plane's JWKS watch
	// for jwt_authn (internal/jwkswatch) uses the same interval.
	DefaultRefreshInterval = 30 * time.Second
	DefaultMinRefreshGap   = 5 * time.Second
	DefaultCacheSize       = 10000
	DefaultMaxTokenBytes   = 8192
)

// Identity is the caller a verified token names. The Verifier shares one
// Identity between all the Verify calls of the same token: treat it (and
// its slices) as read-only.
type Identity struct {
	Provider string // the provider's Name
	// Namespace is the provider's identity namespace (its Namespace, or
	// its Name when that is empty): callers name the identity
	// "<Namespace>:<UserID>".
	Namespace string
	Subject   string // "sub", "" when absent
	UserID    string // the ClaimMap.UserID claim (default "sub"), never ""
	Roles     []string
	Scopes    []string // "scope" (space separated) or else "scp"
	Tenant    string
	Tier      string
	Expiry    time.Time // "exp"
}

// Metrics receives the Verifier's events. Its methods are called on the
// hot path and from background goroutines: they must be fast and safe for
// concurrent use.
type Metrics interface {
	// JWKSRefresh reports one fetch of a provider's remote JWKS.
	JWKSRefresh(provider string, ok bool)
	// CacheHit reports one lookup of the verification cache (not made when
	// the cache is disabled or the token is too large).
	CacheHit(hit bool)
}

type nopMetrics struct{}

func (nopMetrics) JWKSRefresh(string, bool) {}
func (nopMetrics) CacheHit(bool)            {}

// Options tune a Verifier. The zero value is usable.
type Options struct {
	// HTTPClient fetches remote JWKS; nil means a client of its own. Each
	// fetch is bounded to 5 s and 1 MiB whatever the client.
	HTTPClient *http.Client
	Logger     *slog.Logger // nil: slog.Default()
	Now        func() time.Time
	// Getenv reads the HMAC secrets (HMACSecretEnv); nil: os.Getenv.
	Getenv func(string) string
	// RefreshInterval between background JWKS fetches of a provider
	// without its own JWKSRefresh, and the longest its verifications stay
	// cached (default DefaultRefreshInterval, 30s).
	RefreshInterval time.Duration
	// MinRefreshGap is the least time between two fetches of one
	// provider's JWKS triggered by unknown key ids (default 5s).
	MinRefreshGap time.Duration
	// CacheSize bounds the verification cache (about that many tokens;
	// default 10000). A negative size disables the cache.
	CacheSize int
	// MaxTokenBytes: longer tokens are refused unparsed (default 8192).
	MaxTokenBytes int
	Metrics       Metrics // nil: none
	// KeysWithdrawn, when set, is called (on a background goroutine)
	// each time a refreshed JWKS of provider lacks a key the previous one
	// had, after the verification cache was purged: a caller that keeps
	// verified tokens elsewhere must drop them too, or tokens signed with
	// a withdrawn key outlive it there.
	KeysWithdrawn func(provider string)
	// JWKS, when set, shares remote JWKS bodies with other verifiers of
	// the process: a new verifier starts with the keys another one fetched
	// from the same URI (within its refresh interval plus a fetch's
	// timeout) instead of none, and refreshes them in the background as
	// usual.
	JWKS JWKSStore
}

// JWKSStore keeps the last JWKS body fetched from each URI. It is safe for
// concurrent use.
type JWKSStore interface {
	// Load returns the body last fetched from uri if it was fetched within
	// maxAge, else nil.
	Load(uri string, maxAge time.Duration) []byte
	// Store records body, just fetched from uri.
	Store(uri string, body []byte)
}

// JWKSValidators may also be implemented by a JWKSStore: it keeps, with
// each body, the validators of the response that carried it (ETag and
// Last-Modified, each "" when absent), so that a verifier seeded with the
// body revalidates it with a conditional request instead of downloading it
// again. A body stored with Store has no validators.
type JWKSValidators interface {
	// StoreValidated records body, just fetched from uri (or revalidated:
	// a 304 Not Modified to a conditional request), with its validators.
	StoreValidated(uri string, body []byte, etag, lastModified string)
	// LoadValidated is Load with the body's validators.
	LoadValidated(uri string, maxAge time.Duration) (body []byte, etag, lastModified string)
}

// JWKSFailures may also be implemented by a JWKSStore: it records the
// fetches that failed, so that WaitKeys does not hold a new verifier for
// an endpoint another verifier of the process has just found failing (a
// hung IdP would otherwise cost every new Envoy module configuration, and
// so every exceptions-table push, the whole warm-up wait).
type JWKSFailures interface {
	// Failed records that a fetch from uri just failed.
	Failed(uri string)
	// FailedWithin reports whether the last fetch from uri failed less
	// than d ago, no fetch from it having succeeded (Store) since.
	FailedWithin(uri string, d time.Duration) bool
}

// Verifier verifies tokens against one policy version's JWT providers.
type Verifier struct {
	log             *slog.Logger
	metrics         Metrics
	now             func() time.Time
	client          *http.Client
	refreshInterval time.Duration
	minRefreshGap   time.Duration
	maxTokenBytes   int
	b64             *base64.Encoding
	keysWithdrawn   func(provider string) // nil: nobody to tell
	jwks            JWKSStore             // nil: keys are not shared

	providers []*provider
	byIssuer  map[string]*provider
	cache     *verifyCache
	sigChecks atomic.Int64 // signature verifications made, for tests

	life      context.Context // ends with Close
	stop      context.CancelFunc
	startOnce sync.Once
	mu        sync.Mutex // guards closed and wg.Add
	closed    bool
	wg        sync.WaitGroup
}

// NewVerifier builds a Verifier for providers. It fails on a negative
// option and when a provider is invalid: an unsupported or "none" algorithm, an HS* algorithm without a
// secret of the algorithm's size, a bad or key-less inline JWKS, a missing
// key source, or an issuer configured twice. Remote JWKS are not fetched
// until Start or the first token that needs them.
func NewVerifier(providers []ir.JWTProvider, opts Options) (*Verifier, error) {
	if opts.RefreshInterval < 0 || opts.MinRefreshGap < 0 || opts.MaxTokenBytes < 0 {
		return nil, errors.New("jwt: RefreshInterval, MinRefreshGap and MaxTokenBytes must not be negative")
	}
	v := &Verifier{
		log: opts.Logger, metrics: opts.Metrics, now: opts.Now, client: opts.HTTPClient,
		refreshInterval: orDefault(opts.RefreshInterval, DefaultRefreshInterval),
		minRefreshGap:   orDefault(opts.MinRefreshGap, DefaultMinRefreshGap),
		maxTokenBytes:   orDefault(opts.MaxTokenBytes, DefaultMaxTokenBytes),
		cache:           newVerifyCache(orDefault(opts.CacheSize, DefaultCacheSize)),
		b64:             newB64URL(),
		keysWithdrawn:   opts.KeysWithdrawn,
		jwks:            opts.JWKS,
		byIssuer:        make(map[string]*provider, len(providers)),
	}
	v.setDefaults()
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, cfg := range providers {
		p, err := newProvider(cfg, getenv)
		if err != nil {
			return nil, fmt.Errorf("jwt provider %q: %w", cfg.Name, err)
		}
		p.refresh = orDefault(cfg.JWKSRefresh, v.refreshInterval)
		if _, dup := v.byIssuer[p.issuer]; dup {
			return nil, fmt.Errorf("jwt provider %q: issuer %q is configured twice", cfg.Name, p.issuer)
		}
		v.byIssuer[p.issuer] = p
		v.providers = append(v.providers, p)
		v.seed(p)
	}
	v.life, v.stop = context.WithCancel(context.Background())
	return v, nil
}

func (v *Verifier) setDefaults() {
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.metrics == nil {
		v.metrics = nopMetrics{}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: fetchTimeout}
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Start fetches every remote JWKS now (a failure is logged, not fatal:
// tokens of that provider fail with jwks_unavailable until a fetch
// succeeds) and then every refresh interval of its provider until ctx ends
// or Close. Calls after the first do nothing.
func (v *Verifier) Start(ctx context.Context) {
	v.startOnce.Do(func() {
		for _, p := range v.providers {
			if p.remote != nil {
				v.spawn(func() { v.refreshLoop(ctx, p) })
			}
		}
	})
}

// Close stops the background refreshes and waits for them. Verify still
// works afterwards with the keys already loaded.
func (v *Verifier) Close() {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.stop()
	v.wg.Wait()
}

// spawn runs f on a goroutine that Close waits for; false once closed.
func (v *Verifier) spawn(f func()) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return false
	}
	v.wg.Go(f)
	return true
}

// Verify verifies a compact JWS (without the "Bearer " prefix) and returns
// the caller's identity, or an *Error. ctx bounds only the wait for an
// on-demand JWKS refresh. The Identity is shared: do not modify it.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > v.maxTokenBytes {
		return nil, reject(ReasonTooLarge)
	}
	now := v.now()
	var key cacheKey
	var gen uint64
	if v.cache != nil {
		key = keyOf(token)
		// Before the keys are read: a purge after this read (a key
		// withdrawn meanwhile) keeps this verification out of the cache.
		gen = v.cache.generation()
		id := v.cache.get(&key, now.UnixNano())
		v.metrics.CacheHit(id != nil)
		if id != nil {
			return id, nil
		}
	}
	id, p, rerr := v.verify(ctx, token, now)
	if rerr != nil {
		return nil, rerr
	}
	until := now.Add(p.refresh)
	if id.Expiry.Before(until) {
		until = id.Expiry
	}
	v.cache.put(&key, id, until.UnixNano(), now.UnixNano(), gen)
	return id, nil
}

// verify does the work of an uncached Verify; it also returns the token's
// provider.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Identity, *provider, *Error) {
	t, err := parseToken(raw, v.b64)
	if err != nil {
		return nil, nil, err
	}
	p := v.byIssuer[t.iss]
	if p == nil {
		return nil, nil, rejectf(ReasonUnknownIssuer, errors.New("no provider for the token's issuer"))
	}
	if _, ok := p.algs[t.alg]; !ok {
		return nil, nil, rejectf(ReasonAlgNotAllowed, fmt.Errorf("provider %s does not allow the token's alg", p.name))
	}
	if err := v.verifySignature(ctx, p, t); err != nil {
		return nil, nil, err
	}
	exp, err := p.validateTimes(t.claims, now)
	if err != nil {
		return nil, nil, err
	}
	if err := p.validateAudience(t.claims); err != nil {
		return nil, nil, err
	}
	id, err := p.identity(t.claims, exp)
	return id, p, err
}
