// Package oauth2 checks opaque OAuth 2.0 access tokens by token
// introspection (RFC 7662), with a bounded cache and single-flight
// requests.
//
// Outcomes: a *Result for an active token; ErrInactive (the server says
// inactive, or the token has expired); ErrAudience (active, but not for
// this gateway); ErrUnavailable (the endpoint could not answer: network
// error, timeout, non-200 status, bad response). Every error denies; only
// ErrUnavailable means "could not tell" and is never cached.
//
// An Introspector has at most MaxConcurrent requests in flight (concurrent
// callers for one token share one). A token that would need another is
// refused at once with an error wrapping both ErrUnavailable and
// ErrOverloaded, never queued: the requests run detached from their
// callers, so queueing would let a burst pile up work nobody waits for.
//
// Tokens and the client secret are never logged; the cache is keyed by
// the token's SHA-256.
package oauth2

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Defaults of Options.
const (
	DefaultNegativeTTL = 5 * time.Second
	DefaultCacheSize   = 10000
	DefaultTimeout     = 2 * time.Second
	// DefaultMaxConcurrent bounds the requests in flight when the provider
	// sets no MaxConcurrent.
	DefaultMaxConcurrent = 64
	// maxResponseBytes caps the introspection response read.
	maxResponseBytes = 1 << 20
)

// Errors of Introspect; see the package documentation.
var (
	ErrInactive    = errors.New("oauth2: token inactive")
	ErrAudience    = errors.New("oauth2: token not issued for this audience")
	ErrUnavailable = errors.New("oauth2: introspection unavailable")
	// ErrOverloaded: MaxConcurrent requests are already in flight. It comes
	// wrapped together with ErrUnavailable.
	ErrOverloaded = errors.New("oauth2: too many introspections in flight")
)

// Options configure an Introspector. The zero value is usable.
type Options struct {
	// HTTPClient calls the endpoint (default: a new http.Client). It is
	// used without following redirects, so credentials never travel to
	// another URL.
	HTTPClient *http.Client
	// Getenv reads the client secret (default os.Getenv).
	Getenv func(string) string
	// Now is the clock for exp checks and cache lifetimes (default
	// time.Now).
	Now func() time.Time
	// NegativeTTL is how long an inactive token is remembered (default
	// DefaultNegativeTTL; negative: not at all).
	NegativeTTL time.Duration
	// CacheSize bounds the cached tokens (default DefaultCacheSize;
	// negative: no cache).
	CacheSize int
	// Timeout bounds one introspection request (default DefaultTimeout).
	Timeout time.Duration
	Logger  *slog.Logger // default slog.Default()
}

// Introspector checks tokens against one provider. It is safe for
// concurrent use.
type Introspector struct {
	name      string
	namespace string
	prefix    string
	endpoint  string
	user      string // client id and secret, form-encoded (RFC 6749 §2.3.1)
	password  string
	audiences []string
	cacheTTL  time.Duration
	negTTL    time.Duration
	timeout   time.Duration
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger
	cache     *cache // nil: no cache
	flight    flight
	slots     chan struct{} // one token per request in flight
}

// NewIntrospector returns an Introspector of p. It fails when p is
// incomplete or its client secret is not set in the environment.
// p.CacheTTL bounds how long an active token is trusted without asking
// again (never past its exp); zero disables positive caching.
// p.MaxConcurrent bounds the requests in flight (0: DefaultMaxConcurrent).
func NewIntrospector(p ir.OAuth2Provider, opts Options) (*Introspector, error) {
	opts = opts.withDefaults()
	if err := checkEndpoint(p.IntrospectionURL); err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	if p.ClientID == "" || p.ClientSecretEnv == "" {
		return nil, errors.New("oauth2: clientId and clientSecretEnv are required")
	}
	secret := opts.Getenv(p.ClientSecretEnv)
	if secret == "" {
		return nil, fmt.Errorf("oauth2: the client secret variable %s is not set", p.ClientSecretEnv)
	}
	if p.MaxConcurrent < 0 {
		return nil, fmt.Errorf("oauth2: maxConcurrent must not be negative, got %d", p.MaxConcurrent)
	}
	client := *opts.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in := &Introspector{
		name:      p.Name,
		namespace: cmp.Or(p.Namespace, p.Name),
		prefix:    p.TokenPrefix,
		endpoint:  p.IntrospectionURL,
		user:      url.QueryEscape(p.ClientID),
		password:  url.QueryEscape(secret),
		audiences: append([]string(nil), p.Audiences...),
		cacheTTL:  p.CacheTTL,
		negTTL:    opts.NegativeTTL,
		timeout:   opts.Timeout,
		client:    &client,
		now:       opts.Now,
		log:       opts.Logger,
		flight:    flight{calls: make(map[tokenHash]*call)},
		slots:     make(chan struct{}, cmp.Or(p.MaxConcurrent, DefaultMaxConcurrent)),
	}
	if opts.CacheSize > 0 {
		in.cache = newCache(opts.CacheSize)
	}
	return in, nil
}

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("introspection URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("introspection URL %q is not an absolute http(s) URL", u.Redacted())
	}
	return nil
}

// Name returns the provider's name.
func (in *Introspector) Name() string { return in.name }

// Namespace returns the provider's identity namespace (its Namespace, or
// its Name when that is empty).
func (in *Introspector) Namespace() string { return in.namespace }

// Accepts reports whether token starts with the provider's token prefix
// (every token does when it has none). Introspect does not check it: the
// caller picks the one provider a token goes to.
func (in *Introspector) Accepts(token string) bool { return strings.HasPrefix(token, in.prefix) }

// TokenPrefix returns the provider's token prefix, "" for none.
func (in *Introspector) TokenPrefix() string { return in.prefix }

// acquire takes a request slot if one is free, without waiting.
func (in *Introspector) acquire() bool {
	select {
	case in.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (in *Introspector) release() { <-in.slots }

// Introspect checks token. Concurrent calls for the same token share one
// request; answers are cached (see Options and NewIntrospector).
func (in *Introspector) Introspect(ctx context.Context, token string) (*Result, error) {
	if token == "" {
		return nil, fmt.Errorf("%w (provider %s): empty token", ErrInactive, in.name)
	}
	k := sha256.Sum256([]byte(token))
	if in.cache != nil {
		if res, ok := in.cache.get(k, in.now()); ok {
			return in.check(res, in.now())
		}
	}
	res, err := in.flight.do(ctx, k, in.acquire, func() (*Result, error) {
		defer in.release()
		return in.introspect(ctx, k, token)
	})
	if errors.Is(err, ErrOverloaded) {
		return nil, fmt.Errorf("%w (provider %s): %w", ErrUnavailable, in.name, err)
	}
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (provider %s): %w", ErrUnavailable, in.name, err)
	}
	return in.check(res, in.now())
}

// introspect asks the endpoint about token and caches the answer. It runs
// detached from the caller's cancellation (other callers may share it),
// bounded by the introspection timeout.
func (in *Introspector) introspect(ctx context.Context, k tokenHash, token string) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.timeout)
	defer cancel()
	res, err := in.call(ctx, token)
	if err != nil {
		in.log.Warn("oauth2 introspection failed", "provider", in.name, "err", err)
		return nil, fmt.Errorf("%w (provider %s): %w", ErrUnavailable, in.name, err)
	}
	in.remember(k, res)
	return res, nil
}

// remember caches an answer: an active token until min(now+CacheTTL, exp),
// an inactive or expired one for NegativeTTL.
func (in *Introspector) remember(k tokenHash, res *Result) {
	if in.cache == nil {
		return
	}
	now := in.now()
	if res == nil || res.expired(now) {
		if in.negTTL > 0 {
			in.cache.put(k, res, now.Add(in.negTTL), now)
		}
		return
	}
	if in.cacheTTL <= 0 {
		return
	}
	until := now.Add(in.cacheTTL)
	if !res.ExpiresAt.IsZero() && res.ExpiresAt.Before(until) {
		until = res.ExpiresAt
	}
	in.cache.put(k, res, until, now)
}

// check turns a (possibly cached) answer into Introspect's result, a copy
// the caller may keep.
func (in *Introspector) check(res *Result, now time.Time) (*Result, error) {
	switch {
	case res == nil:
		return nil, fmt.Errorf("%w (provider %s)", ErrInactive, in.name)
	case res.expired(now):
		return nil, fmt.Errorf("%w (provider %s): expired", ErrInactive, in.name)
	case len(in.audiences) > 0 && !res.hasAudience(in.audiences):
		return nil, fmt.Errorf("%w (provider %s)", ErrAudience, in.name)
	}
	return res.clone(), nil
}
