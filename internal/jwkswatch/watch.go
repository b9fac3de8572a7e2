// Package jwkswatch watches the remote JWKS of the JWT providers that
// Envoy's jwt_authn filter verifies, and reports a withdrawn key so that
// the control plane replaces jwt_authn's verified-token caches.
//
// Envoy's jwt_authn keeps a verified token in its cache until the token's
// exp, across JWKS refreshes: a token verified before its signing key was
// withdrawn from the IdP's JWKS would stay admitted. No request of a route
// jwt_authn decides reaches the control plane, so the control plane fetches
// those JWKS itself, every Interval, and when a fetch lacks a key the
// previous one had it calls Bump (xds.Server.BumpJWKSEpoch: a new jwt_authn
// config, with new caches, served over ECDS).
//
// Contract:
//   - A Watch follows the policy (Swap, a controlplane.TableSwapper): it
//     watches translator.RemoteJWKSProviders of the policy; a policy that
//     watches the same JWKS keeps the watch, and a new watch starts from
//     the keys last fetched from each URI, so a withdrawal across a policy
//     change is seen too.
//   - Each JWKS is fetched every refresh interval of its provider: its
//     JWKSRefresh (the policy's jwksRefresh), else Interval. A withdrawal
//     is seen within that interval of the IdP's change (plus the fetch);
//     the first fetch of a URI only learns its keys.
//   - Bump is called at most once per bump interval, the shortest of
//     Interval and the watched providers' JWKSRefresh, whatever the number
//     of providers and withdrawals (a flapping JWKS cannot cause a push
//     storm); a withdrawal seen within the bump interval of the last Bump
//     is not dropped but bumped once at that interval's end. A withdrawal
//     is so served within its provider's interval plus the bump interval
//     at worst, within its provider's interval when nothing was withdrawn
//     in the bump interval before.
//   - A failed fetch keeps the keys (no withdrawal), and is retried sooner
//     (the verifier's backoff, at most Interval).
//   - Fetches are conditional (the verifier's periodic refresh): a 304 Not
//     Modified keeps the keys (no withdrawal), and the validators are kept
//     with each body across Swaps, so a new watch's first fetch of an
//     unchanged JWKS is a 304 too.
package jwkswatch

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// DefaultInterval is the default time between two fetches of a watched
// JWKS (Options.Interval): the ext_authz service's and the Envoy module's
// (jwt.DefaultRefreshInterval), so that a withdrawn key's tokens are
// refused within the same bound on every path. It is well under
// jwt_authn's JWKS cache_duration (5 min, translator.jwksCacheDuration),
// so the watch, not Envoy's refresh, bounds how long they stay admitted:
// a Bump also makes Envoy fetch the JWKS again.
const DefaultInterval = jwt.DefaultRefreshInterval

// Options configure a Watch.
type Options struct {
	// Interval between two fetches of each watched JWKS whose provider sets
	// no JWKSRefresh (default DefaultInterval); the least time between two
	// Bump calls is at most Interval.
	Interval time.Duration
	// Bump is told that keys were withdrawn (required); reason names the
	// providers. It must not call back into the Watch.
	Bump       func(reason string)
	Logger     *slog.Logger // nil: slog.Default()
	HTTPClient *http.Client // nil: the verifier's own
}

// Watch watches the remote JWKS of the current policy's jwt_authn
// providers. It is safe for concurrent use.
type Watch struct {
	ctx  context.Context
	opts Options
	lim  *limiter

	// bodies keeps the last JWKS fetched from each URI across Swaps.
	bodies *bodies

	mu      sync.Mutex
	watched []ir.JWTProvider // the providers watched
	current *jwt.Verifier    // nil when none is
}

// New returns a Watch that watches nothing until Swap; ctx bounds its
// fetches.
func New(ctx context.Context, opts Options) (*Watch, error) {
	if opts.Bump == nil {
		return nil, fmt.Errorf("jwkswatch: Options.Bump is required")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("jwkswatch: negative interval %s", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Watch{ctx: ctx, opts: opts, lim: newLimiter(opts.Interval, opts.Bump), bodies: &bodies{m: map[string]body{}}}, nil
}

// Swap watches the JWKS of cfg's jwt_authn providers (see the package
// contract) and returns a function that watches the previous ones again
// (unless another Swap came since). It fails when a provider cannot be
// watched (the ext_authz service's verifier refuses such a policy too).
func (w *Watch) Swap(cfg *ir.Config) (restore func(), err error) {
	providers := translator.RemoteJWKSProviders(cfg)
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := w.watched
	if watchKey(providers) == watchKey(prev) {
		return func() {}, nil
	}
	if err := w.replace(providers); err != nil {
		return nil, err
	}
	w.opts.Logger.Info("watching JWKS for withdrawn keys", "providers", len(providers), "interval", w.opts.Interval,
		"bumpInterval", bumpInterval(w.opts.Interval, providers))
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if watchKey(w.watched) != watchKey(providers) {
			return
		}
		if err := w.replace(prev); err != nil { // NewVerifier accepted them before
			w.opts.Logger.Error("watch the previous policy's JWKS again", "err", err)
		}
	}, nil
}

// replace stops the current verifier and watches providers with a new
// one, which starts with the keys last fetched from each URI (bodies), so
// its first fetch reports a key withdrawn since. Callers hold mu.
func (w *Watch) replace(providers []ir.JWTProvider) error {
	next, err := w.start(providers)
	if err != nil {
		return err
	}
	if w.current != nil {
		w.current.Close()
	}
	w.watched, w.current = providers, next
	w.lim.setInterval(bumpInterval(w.opts.Interval, providers))
	return nil
}

// bumpInterval is the least time between two Bump calls for providers: the
// shortest of interval and their JWKSRefresh, so that a provider refreshed
// more often than interval has its withdrawals served as often.
func bumpInterval(interval time.Duration, providers []ir.JWTProvider) time.Duration {
	for _, p := range providers {
		if p.JWKSRefresh > 0 {
			interval = min(interval, p.JWKSRefresh)
		}
	}
	return interval
}

// start returns a started verifier for providers, nil for none.
func (w *Watch) start(providers []ir.JWTProvider) (*jwt.Verifier, error) {
	if len(providers) == 0 {
		return nil, nil
	}
	v, err := jwt.NewVerifier(providers, jwt.Options{
		HTTPClient: w.opts.HTTPClient, Logger: w.opts.Logger, RefreshInterval: w.opts.Interval,
		CacheSize: -1, KeysWithdrawn: w.lim.withdrawn, JWKS: w.bodies,
	})
	if err != nil {
		return nil, fmt.Errorf("watch jwks: %w", err)
	}
	v.Start(w.ctx)
	return v, nil
}

// Close stops the watch and any pending Bump.
func (w *Watch) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current != nil {
		w.current.Close()
	}
	w.watched, w.current = nil, nil
	w.lim.stop()
}

// watchKey identifies what a verifier of providers watches: each one's
// name, issuer, JWKS URI and algorithms (the keys it keeps) and refresh
// interval.
func watchKey(providers []ir.JWTProvider) string {
	parts := make([]string, 0, len(providers))
	for _, p := range providers {
		parts = append(parts, fmt.Sprintf("%q %q %q %q %d", p.Name, p.Issuer, p.JWKSURI, p.Algorithms, p.JWKSRefresh))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\n")
}

// bodies implements jwt.JWKSStore and jwt.JWKSValidators for the watch's
// verifiers: the last body fetched from each URI, with its validators,
// whatever its age (maxAge is ignored). A verifier that replaces another
// compares its first fetch with the keys the previous one saw last: a key
// withdrawn across a Swap is still seen, and an old body can only cause an
// extra reset, never hide a withdrawal (its validators make the first
// fetch conditional: a 304 means the IdP still serves that very body).
type bodies struct {
	mu sync.Mutex
	m  map[string]body
}

type body struct {
	data               []byte
	etag, lastModified string
}

func (b *bodies) Load(uri string, maxAge time.Duration) []byte {
	data, _, _ := b.LoadValidated(uri, maxAge)
	return data
}

func (b *bodies) Store(uri string, data []byte) { b.StoreValidated(uri, data, "", "") }

func (b *bodies) LoadValidated(uri string, _ time.Duration) (data []byte, etag, lastModified string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[uri]
	return e.data, e.etag, e.lastModified
}

func (b *bodies) StoreValidated(uri string, data []byte, etag, lastModified string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[uri] = body{data: data, etag: etag, lastModified: lastModified}
}
