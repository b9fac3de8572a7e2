package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// newRateLimiter returns the rate-limit service: counters in Redis when
// --redis is set (with an in-memory twin for the "local" failure mode),
// otherwise in memory for one process.
func newRateLimiter(o serveOptions, log *slog.Logger, reg prometheus.Registerer) (*ratelimit.Service, error) {
	local := counter.NewMemory(time.Now)
	opts := ratelimit.Options{Logger: log, Backend: local, Local: local, Metrics: ratelimit.NewMetrics(reg)}
	if o.redisURL != "" {
		ro, err := hotPathRedisOptions(o.redisURL)
		if err != nil {
			return nil, &UsageError{fmt.Errorf("--redis: %w", err)}
		}
		// Keys over their limit are answered locally until they can be
		// admitted again, which sheds Redis load during abuse.
		rdb := newRedisClient(ro)
		warmRedis(rdb, log) // serve_ha.go
		opts.Backend = counter.NewOverLimitCache(counter.NewRedis(rdb, counter.RedisOptions{Logger: log}), time.Now)
	}
	return ratelimit.New(opts), nil
}

// runRateLimitOnly serves the rate-limit service alone, following the
// store in --data-dir like the authz-only mode, with the RLQS server of
// quota mode on the same gRPC server (Envoy's tollgate_ratelimit cluster
// carries both), so a split deployment can use either mode.
func runRateLimitOnly(ctx context.Context, o serveOptions, log *slog.Logger) error {
	st, err := openStore(ctx, o, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	svc, err := newRateLimiter(o, log, reg)
	if err != nil {
		return err
	}
	rlqs, err := newQuotaServer(ctx, o, log, reg)
	if err != nil {
		return err
	}
	tracer, err := newTracer(ctx, o, "tollgate-ratelimit")
	if err != nil {
		return err
	}
	defer shutdownTracer(tracer)
	g := newGRPCServer(tracer.ServerOptions()...)
	svc.Register(g)
	rlqs.Register(g)
	both := swappers{svc, rlqs}
	served := syncTable(st, both, "", log) // before listening, as in runAuthzOnly
	l, err := net.Listen("tcp", o.ratelimitAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.ratelimitAddr, err)
	}
	go serveGRPC(g, l, "ratelimit", log)
	defer stopGRPC(g, o.ha.grace)
	stopHTTP, err := serveMetrics(o.adminAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	log.Info("rate limit service ready (RLS and RLQS)", "ratelimit", l.Addr().String(), "store", describeStore(o))
	follow(ctx, st, both, log, served)
	return nil
}
