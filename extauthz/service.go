// Package extauthz is Envoy's external authorization service
// (envoy.service.auth.v3.Authorization/Check): it authenticates a request
// with a JWT, an API key or an OAuth 2.0 access token, checks the route's
// roles and scopes, and hands the caller's identity to the upstream in
// headers it can trust.
//
// Contract:
//   - Check reads one immutable Table through an atomic pointer: no locks;
//     the only I/O is the one lookup a credential needs (a Redis round trip
//     for an uncached API key, an introspection for an uncached token) and,
//     on routes that take their limits in the Check, the rate-limit script.
//   - On a route marked contract.KeyRateLimit, an authenticated request's
//     rate limits are taken in the same Check through Options.RateLimit
//     (one Redis script; the route makes no call to the rate-limit
//     service): over the limit it is a 429 with the rate-limit service's
//     body and headers, allowed it carries the rate-limit headers for the
//     client (response_headers_to_add); when the limits cannot be taken
//     and the failure mode is closed, a 503.
//   - It fails closed: any error denies, with a CheckResponse carrying the
//     status (401, 403 or 503), never a gRPC error that Envoy might treat
//     per its failure mode.
//   - The route's requirement comes from Envoy (per-route context
//     extensions written by the translator), so the service never re-matches
//     paths and cannot disagree with Envoy about the route.
package extauthz

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/policy/ir"
)

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	// Keys authenticates API keys (an apikey.Store, or a Local's offline
	// verifier of signed keys); nil when API keys are not used.
	Keys KeyLookup
	// HTTPClient fetches JWKS and calls introspection endpoints.
	HTTPClient *http.Client
	// Getenv reads the secrets policies name by environment variable.
	Getenv  func(string) string
	Metrics *Metrics
	// RateLimit takes the limits of routes marked to take them in the
	// Check (contract.KeyRateLimit); nil denies such routes with 503.
	RateLimit RateLimiter
	// KeysWithdrawn, when set, is told (on a background goroutine) that a
	// JWT provider's refreshed JWKS lacks a key it had: the JWT verifier
	// has purged its verification cache, and whoever keeps verified
	// tokens elsewhere (the Envoy module's table) must drop them too.
	KeysWithdrawn func(provider string)
	// JWKS, when set, shares remote JWKS bodies between the verifiers of
	// successive policy versions (jwt.Options.JWKS): the Envoy module's
	// new filter configurations start with the keys the previous one
	// fetched.
	JWKS jwt.JWKSStore
}

// KeyLookup is what the service needs of an API-key store: its Lookup,
// with apikey.Store.Lookup's contract (errors wrapping apikey.ErrMalformed,
// ErrNotFound, ErrExpired, ErrRevoked are verdicts; any other error is
// 503 key_store_unavailable).
type KeyLookup interface {
	Lookup(ctx context.Context, key string) (*apikey.Record, error)
}

// Service is the ext_authz gRPC service.
type Service struct {
	authv3.UnimplementedAuthorizationServer
	opts  Options
	log   *slog.Logger
	ctx   context.Context
	table atomic.Pointer[Table]

	mu   sync.Mutex // serialises Swap
	prev *Table
}

// New returns a Service that denies everything until the first Swap. ctx
// bounds the background work of its tables (JWKS refreshes).
func New(ctx context.Context, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	return &Service{opts: opts, log: opts.Logger, ctx: ctx}
}

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// Swap builds the table of cfg and makes it the one Check reads. It returns
// a function that puts the previous table back, for a push that fails
// after the swap. Building fails (and nothing changes) when a provider
// cannot be set up, e.g. an inline JWKS that does not parse or a missing
// secret.
func (s *Service) Swap(cfg *ir.Config) (restore func(), err error) {
	t, err := newTable(s.ctx, cfg, s.opts, false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.table.Swap(t)
	if s.prev != nil && s.prev != old {
		s.prev.close()
	}
	s.prev = old
	return func() { s.restore(old, t) }, nil
}

// restore makes old current again and discards t.
func (s *Service) restore(old, t *Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table.CompareAndSwap(t, old) {
		t.close()
	}
}

// Close stops the background work of the current tables.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.table.Swap(nil); t != nil {
		t.close()
	}
	if s.prev != nil {
		s.prev.close()
		s.prev = nil
	}
}
