package quota

import (
	"context"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
)

// RecoverInterval is how often Run looks for buckets answered with the
// failure mode, to push fresh assignments once the account is back.
const RecoverInterval = 500 * time.Millisecond

// Run pushes fresh assignments, until ctx ends, to every stream holding a
// bucket that was last answered with the failure mode, as soon as the
// account settles again: Envoy would otherwise wait for its next report
// (up to 5 s) to be limited exactly again. With a Notifier it also takes
// the other servers' rebalancing messages (rebalance.go). When ctx ends,
// Run closes the server (Close).
func (s *Server) Run(ctx context.Context) {
	if s.opts.Notifier != nil {
		go s.opts.Notifier.Subscribe(ctx, func(msg string) { s.onMessage(ctx, msg) })
	}
	tick := time.NewTicker(RecoverInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			return
		case <-tick.C:
			s.recoverStreams(ctx)
		}
	}
}

// recoverStreams re-settles the degraded buckets of every stream.
func (s *Server) recoverStreams(ctx context.Context) {
	t := s.table.Load()
	if t == nil {
		return
	}
	if until := s.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return
	}
	for _, st := range s.openStreams() {
		err := s.exchange(st, func() *rlqsv3.RateLimitQuotaResponse {
			st.mu.Lock()
			defer st.mu.Unlock()
			var degraded []*bucketState
			for _, bs := range st.buckets {
				if bs.degraded {
					degraded = append(degraded, bs)
				}
			}
			resp := &rlqsv3.RateLimitQuotaResponse{}
			for _, a := range s.decideAll(ctx, t, degraded) {
				// only buckets settled with the shared account again
				if bs := st.buckets[bucketKey(a.GetBucketId())]; bs != nil && !bs.degraded {
					resp.BucketAction = append(resp.BucketAction, a)
				}
			}
			if len(resp.BucketAction) > 0 {
				s.opts.Metrics.recoveryPush()
			}
			return resp
		})
		if err != nil {
			s.log.Debug("rlqs: push after recovery failed", "err", err)
		}
	}
}
