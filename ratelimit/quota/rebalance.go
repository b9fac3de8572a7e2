package quota

import (
	"context"
	"math"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"

	"github.com/tollgate/tollgate/ratelimit"
)

// Rebalancing a newcomer. A participant's grant is what its Envoy may
// admit at once; the others count it as held until its next report (up
// to 5 s). A consumer's first Envoy is granted everything the limit has
// left, so without rebalancing the consumer's second Envoy was held to
// its floor share (0.1/n of the rate) until the first one reported again:
// a consumer spread over two Envoys at 10 requests a second against 1,000
// a minute saw most of the second Envoy's requests refused for up to 5 s.
//
// When a bucket is first reported on a stream and other streams of this
// server hold the same bucket (the same route, tier and consumer or client
// address through other Envoys), the server
//  1. takes the newcomer's demand as at least the mean of those peers'
//     (a new bucket's first report says one request);
//  2. settles each peer again without usage and pushes it its new bucket
//     alone (no blanket rule first), which Envoy rescales at the old fill
//     ratio: a peer never gains tokens it had spent;
//  3. settles the newcomer again and pushes its bucket.
//
// Peers on other replicas are not seen: they shrink at their next report.
// Step 3 builds the newcomer's bucket full: requests it admitted since its
// first answer (about a millisecond, at most its first grant) may be
// admitted again.

// newcomers returns, for the buckets of reports that st has not reported
// before, the other streams holding each (by stream: the keys it holds)
// and the demand floor of each such key (its holders' mean demand); nil
// maps when no new bucket is held elsewhere. It takes one stream lock at a
// time.
func (s *Server) newcomers(st *stream, reports *rlqsv3.RateLimitQuotaUsageReports) (map[*stream][]string, map[string]float64) {
	var fresh []string
	st.mu.Lock()
	for _, u := range reports.GetBucketQuotaUsages() {
		if key := bucketKey(u.GetBucketId()); st.buckets[key] == nil {
			fresh = append(fresh, key)
		}
	}
	st.mu.Unlock()
	if len(fresh) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	others := make([]*stream, 0, len(s.streams))
	for _, o := range s.streams {
		if o != st {
			others = append(others, o)
		}
	}
	s.mu.Unlock()
	var holders map[*stream][]string
	var floor, count map[string]float64
	for _, o := range others {
		o.mu.Lock()
		for _, key := range fresh {
			if bs := o.buckets[key]; bs != nil && bs.heldMax > 0 && !bs.degraded {
				if holders == nil {
					holders, floor, count = map[*stream][]string{}, map[string]float64{}, map[string]float64{}
				}
				holders[o] = append(holders[o], key)
				floor[key] += bs.demand
				count[key]++
			}
		}
		o.mu.Unlock()
	}
	for key, n := range count {
		floor[key] /= n
	}
	return holders, floor
}

// rebalance shrinks the holders' buckets of st's new buckets (one batch
// per holder), then settles st's new buckets again and pushes the answers
// (steps 2 and 3 above); keys are floor's.
func (s *Server) rebalance(ctx context.Context, st *stream, holders map[*stream][]string, floor map[string]float64) {
	t := s.table.Load()
	if t == nil {
		return
	}
	for h, keys := range holders {
		s.shrink(ctx, t, h, keys)
	}
	st.mu.Lock()
	bss := make([]*bucketState, 0, len(floor))
	for key := range floor {
		if bs := st.buckets[key]; bs != nil && !bs.degraded {
			bss = append(bss, bs)
		}
	}
	actions := s.decideAll(ctx, t, bss)
	st.mu.Unlock()
	s.push(st, actions)
}

// shrink settles h's buckets of keys again without usage (one batch) and
// pushes each its new token bucket alone, of the grant's size (at least
// one token), so that what Envoy holds is what the account counts it as
// holding.
func (s *Server) shrink(ctx context.Context, t *ratelimit.Table, h *stream, keys []string) {
	h.mu.Lock()
	bss := make([]*bucketState, 0, len(keys))
	for _, key := range keys {
		if bs := h.buckets[key]; bs != nil && bs.heldMax > 0 && !bs.degraded {
			bs.shrinking = true
			bss = append(bss, bs)
		}
	}
	actions := s.decideAll(ctx, t, bss)
	for _, bs := range bss {
		bs.shrinking = false
	}
	h.mu.Unlock()
	s.push(h, actions)
}

// shrunk returns the token-bucket action of actions (an assignment's last)
// alone, sized to capacity (at least one token), or actions unchanged when
// they end with a blanket rule.
func shrunk(actions []*rlqsv3.RateLimitQuotaResponse_BucketAction, capacity float64) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	last := actions[len(actions)-1]
	tb := last.GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket()
	if tb == nil {
		return actions
	}
	tb.MaxTokens = uint32(min(math.MaxUint32, max(1, math.Floor(capacity))))
	return actions[len(actions)-1:]
}

// push sends actions on st, if any.
func (s *Server) push(st *stream, actions []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
	if len(actions) == 0 {
		return
	}
	s.opts.Metrics.rebalancePush()
	if err := s.sendLocked(st, &rlqsv3.RateLimitQuotaResponse{BucketAction: actions}); err != nil {
		s.log.Debug("rlqs: rebalancing push failed", "err", err)
	}
}
