package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/ratelimit/quota"
)

// newQuotaServer returns the RLQS server (rateLimits.mode: quota), served
// on the rate-limit gRPC server: shares and usage in Redis when --redis is
// set (with an in-memory account for the "local" failure mode), otherwise
// in memory for one process. It pushes fresh assignments after an outage
// until ctx ends. Its metrics (tollgate_rlqs_*) are registered with reg.
func newQuotaServer(ctx context.Context, o serveOptions, log *slog.Logger, reg prometheus.Registerer) (*quota.Server, error) {
	local := quota.NewMemoryAccount(time.Now)
	opts := quota.Options{Logger: log, Account: local, Local: local, Metrics: quota.NewMetrics(reg),
		AbandonAfter: abandonAfter(o.rlqsAbandonAfter)}
	if o.redisURL != "" {
		ro, err := redisOptions(o.redisURL)
		if err != nil {
			return nil, &UsageError{fmt.Errorf("--redis: %w", err)}
		}
		acc := quota.NewRedisAccount(newRedisClient(ro), "", 0)
		opts.Account, opts.Notifier = acc, acc
	}
	s := quota.New(opts)
	go s.Run(ctx)
	return s, nil
}

// abandonAfter is quota.Options.AbandonAfter for the flag value n: 0 or
// a negative value never abandons.
func abandonAfter(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
