// Package ratelimit is Envoy's global rate-limit service
// (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit).
//
// Envoy builds one descriptor per rate-limited request from the route name,
// the consumer and tier that the ext_authz service published, the client
// address and any request headers the route keys on (see ir.Descriptor*).
// The service turns it into limits from its table (the caller's tier, the
// route's extra limits, the anonymous limits), takes one request from all
// of them at once in the counter backend (one Redis round trip, GCRA; see
// package counter), and answers OK or OVER_LIMIT with Retry-After, the
// X-RateLimit-* headers and the IETF RateLimit and RateLimit-Policy headers.
//
// Contract: ShouldRateLimit answers OK or OVER_LIMIT, or a gRPC error when
// the backend cannot decide and the failure mode is closed (Envoy then
// denies with 503). Unlimited tiers never reach the backend. A limit the
// counters cannot enforce is a configuration error of its tier or route,
// never a backend outage: it is skipped (logged and counted at Swap), the
// other limits apply, and no other route or consumer is affected. The table is
// read through an atomic pointer and swapped before Envoy gets a new
// snapshot.
package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate/tollgate/internal/breaker"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	// Backend holds the counters: Redis, or memory for one process.
	Backend counter.Backend
	// Local counts in memory when Backend fails and the policy's failure
	// mode is "local"; nil behaves like "open".
	Local   counter.Backend
	Metrics *Metrics
	// Breaker tunes the circuit breaker in front of Backend (its Name and
	// Logger are the service's; by default Threshold is 2 with
	// CountOverlapsOnce, a refused connection opens it at once, and OpenFor
	// is 500 ms): while it is open the failure mode applies without asking
	// the backend, so an outage costs two timeouts in a row, not one per
	// request. Calls that time out together (one stall of this process or
	// of Redis) count once: a single stall does not make the replica refuse
	// its share of calls for OpenFor.
	Breaker breaker.Options
}

// Service is the rate-limit gRPC service.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	opts  Options
	log   *slog.Logger
	table atomic.Pointer[Table]
	mu    sync.Mutex // serialises Swap
	guard *breaker.Breaker
}

// New returns a Service that refuses to decide until the first Swap.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := opts.Breaker
	b.Name, b.Logger = "rate limit backend", opts.Logger
	if b.Threshold <= 0 {
		b.Threshold, b.CountOverlapsOnce = 2, true
	}
	if b.Fatal == nil {
		b.Fatal = dialFailed
	}
	return &Service{opts: opts, log: opts.Logger, guard: breaker.New(b)}
}

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { rlsv3.RegisterRateLimitServiceServer(g, s) }

// Swap makes cfg's limits current and returns a function that restores the
// previous table. Limits the counters cannot enforce (ir.CheckLimit) are
// skipped: each is logged once here and counted in the invalid-limits
// gauge, and the other limits of its tier or route still apply.
func (s *Service) Swap(cfg *ir.Config) (restore func(), err error) {
	t, bad := newTable(cfg)
	for _, b := range bad {
		s.log.Error("rate limit skipped: the counters cannot enforce it; fix it in the policy", "limit", b.where, "err", b.err)
	}
	s.opts.Metrics.invalidLimits(len(bad))
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.table.Swap(t)
	return func() { s.table.CompareAndSwap(t, old) }, nil
}

// ShouldRateLimit implements the RLS protocol.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	t := s.table.Load()
	if t == nil {
		return nil, status.Error(codes.Unavailable, "no policy yet")
	}
	if req.GetDomain() != ir.RateLimitDomain {
		return &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}, nil
	}
	d := s.decide(ctx, t, callers(req))
	s.opts.Metrics.decision(d)
	if d.err != nil {
		// Per request at debug level only: the breaker logs outages.
		s.log.Debug("rate limit not decided; the failure mode applies", "err", d.err)
		return nil, status.Error(codes.Unavailable, "rate limit backend unavailable")
	}
	return d.response(), nil
}

// dialFailed reports a failure to connect (a refused connection): Redis is
// down, not slow, so the breaker opens at once.
func dialFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
