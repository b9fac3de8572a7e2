package quota

import (
	"context"
	"strings"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"

	"github.com/tollgate/tollgate/ratelimit"
)

// Rebalancing a newcomer. A participant's grant is what its Envoy may
// admit at once; the others count it as held until its next report (up
// to 5 s). A consumer's first Envoy is granted everything the limit has
// left at the whole rate, so without rebalancing the consumer's second
// Envoy was held to its floor share (0.1/n of the rate) until the first
// one reported again: a consumer spread over two Envoys at 5 requests a
// second each against 1,000 a minute saw most of the second Envoy's
// requests refused for up to 5 s.
//
// What a holder admitted since its last report is unknown until that
// report, so its tokens cannot be handed over safely (a first version did:
// a holder that had spent its burst let the newcomer admit half of it
// again, 90 admitted against 60 a minute through two Envoys). Only the
// rate is rebalanced at once. When a bucket is first reported on a stream
// and other streams of this server hold the same bucket (the same route,
// tier and consumer or client address through other Envoys), the server
//  1. takes the newcomer's demand as at least the mean of those peers'
//     (a new bucket's first report says one request);
//  2. settles each peer again without usage keeping what it holds
//     (Settlement.Keep): only its share changes, and its bucket is pushed
//     alone at the size Envoy holds (kept), so Envoy keeps its tokens and
//     refills them at the new rate;
//  3. settles the newcomer again the same way (kept, when it holds a token
//     bucket; else its newcomer bucket at its new rate).
// The tokens follow at the holders' next reports: their grants are then
// computed from what they really admitted.
//
// Holders on other servers sharing the account are reached through the
// Notifier (Redis pub/sub): when a new bucket's settlement leaves it at a
// floor share (squeezed), its server publishes "shrink <server>" and the
// report's squeezed keys; every other server rebalances its holders of
// those keys as in step 2 and answers "shrunk <server>" and the keys it
// held; the newcomer's server then settles those buckets again (step 3).
// The account itself counts a newcomer's demand as at least the others'
// mean (settle.lua), which step 1 cannot do for holders it does not see.

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
	var holders map[*stream][]string
	var floor, count map[string]float64
	for _, o := range s.openStreams() {
		if o == st || o.sameClient(st) {
			continue
		}
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

// rebalance settles the holders' buckets of st's new buckets again (one
// batch per holder), then st's new buckets, and pushes the answers (steps
// 2 and 3 above); keys are floor's.
func (s *Server) rebalance(ctx context.Context, st *stream, holders map[*stream][]string, floor map[string]float64) {
	t := s.table.Load()
	if t == nil {
		return
	}
	for h, keys := range holders {
		s.shrink(ctx, t, h, keys)
	}
	s.push(st, func() []*rlqsv3.RateLimitQuotaResponse_BucketAction {
		st.mu.Lock()
		defer st.mu.Unlock()
		bss := make([]*bucketState, 0, len(floor))
		for key := range floor {
			if bs := st.buckets[key]; bs != nil && !bs.degraded {
				bss = append(bss, bs)
			}
		}
		return s.resettle(ctx, t, bss)
	})
}

// resettle settles bss (buckets of one stream, whose lock is held) again
// without a report and returns their actions: a bucket Envoy holds as a
// token bucket keeps what it holds and gets its new rate alone, at its
// size (Settlement.Keep, kept); one under a blanket rule gets ALLOW_ALL
// and its new bucket (built full: it admitted nothing under DENY_ALL).
func (s *Server) resettle(ctx context.Context, t *ratelimit.Table, bss []*bucketState) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	for _, bs := range bss {
		bs.unreported = true
	}
	actions := s.decideAll(ctx, t, bss)
	for _, bs := range bss {
		bs.unreported = false
	}
	return actions
}

// shrink settles h's buckets of keys again without usage, keeping what
// they hold (one batch), and pushes each its new rate (step 2): a holder's
// share of the rate shrinks at once, its tokens at its next report.
func (s *Server) shrink(ctx context.Context, t *ratelimit.Table, h *stream, keys []string) {
	s.push(h, func() []*rlqsv3.RateLimitQuotaResponse_BucketAction {
		h.mu.Lock()
		defer h.mu.Unlock()
		bss := make([]*bucketState, 0, len(keys))
		for _, key := range keys {
			if bs := h.buckets[key]; bs != nil && bs.heldMax > 0 && !bs.degraded {
				bss = append(bss, bs)
			}
		}
		return s.resettle(ctx, t, bss)
	})
}

// kept returns the token-bucket action of actions (an assignment's last)
// alone, of the size Envoy holds (heldMax), or actions unchanged when they
// end with a blanket rule: Envoy keeps a bucket's tokens when its size
// does not change and refills them at the new rate.
func kept(actions []*rlqsv3.RateLimitQuotaResponse_BucketAction, heldMax uint32) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	last := actions[len(actions)-1]
	tb := last.GetQuotaAssignmentAction().GetRateLimitStrategy().GetTokenBucket()
	if tb == nil {
		return actions
	}
	tb.MaxTokens = heldMax
	return actions[len(actions)-1:]
}

// push settles with settle and sends the actions on st, if any (in
// settlement order: exchange).
func (s *Server) push(st *stream, settle func() []*rlqsv3.RateLimitQuotaResponse_BucketAction) {
	err := s.exchange(st, func() *rlqsv3.RateLimitQuotaResponse {
		actions := settle()
		if len(actions) == 0 {
			return nil
		}
		s.opts.Metrics.rebalancePush()
		return &rlqsv3.RateLimitQuotaResponse{BucketAction: actions}
	})
	if err != nil {
		s.log.Debug("rlqs: rebalancing push failed", "err", err)
	}
}

// Notifier carries rebalancing messages between the servers sharing an
// account. Publish sends msg to every subscriber (this server included);
// Subscribe calls fn with each message until ctx ends.
type Notifier interface {
	Publish(ctx context.Context, msg string) error
	Subscribe(ctx context.Context, fn func(msg string))
}

// Rebalancing messages: a line "<kind> <the newcomer's server id>", then
// one bucket key per line (bucket keys are header and filter-state values,
// which hold no newline), at most maxMessageKeys per message: a report of
// many new buckets is one message, not one per bucket.
const (
	msgShrink      = "shrink"
	msgShrunk      = "shrunk"
	maxMessageKeys = 1000
)

// parseMessage reads a rebalancing message.
func parseMessage(msg string) (kind, origin string, keys []string, ok bool) {
	head, body, _ := strings.Cut(msg, "\n")
	kind, origin, ok = strings.Cut(head, " ")
	if !ok || body == "" {
		return "", "", nil, false
	}
	return kind, origin, strings.Split(body, "\n"), true
}

// squeezed reports whether a settlement left the participant at a floor
// share of some limit (0.1/n ≤ 0.1 of its rate: the others' shares hold
// the rest), so that their servers are asked to rebalance the rate.
func squeezed(states []KeyState) bool {
	for _, k := range states {
		if k.Share <= squeezedShare {
			return true
		}
	}
	return false
}

// squeezedShare is the share at or below which a newcomer is squeezed:
// the largest floor share, 0.1/n with n ≥ 1.
const squeezedShare = 0.1

// announce publishes a shrink request for the buckets of reports that st
// settled for the first time and found squeezed (awaiting).
func (s *Server) announce(ctx context.Context, st *stream, reports *rlqsv3.RateLimitQuotaUsageReports) {
	if s.opts.Notifier == nil {
		return
	}
	var keys []string
	st.mu.Lock()
	for _, u := range reports.GetBucketQuotaUsages() {
		key := bucketKey(u.GetBucketId())
		if bs := st.buckets[key]; bs != nil && bs.awaiting {
			keys = append(keys, key)
		}
	}
	st.mu.Unlock()
	s.publish(ctx, msgShrink, s.id, keys)
}

// publish sends keys in messages of kind for the newcomer's server origin.
func (s *Server) publish(ctx context.Context, kind, origin string, keys []string) {
	for lo := 0; lo < len(keys); lo += maxMessageKeys {
		msg := kind + " " + origin + "\n" + strings.Join(keys[lo:min(len(keys), lo+maxMessageKeys)], "\n")
		if err := s.opts.Notifier.Publish(ctx, msg); err != nil {
			s.log.Debug("rlqs: rebalancing message not sent", "kind", kind, "err", err)
			return
		}
	}
}

// onMessage handles a rebalancing message: another server's shrink request
// (shrink this server's holders of the keys, then say which it had), or
// the answer to one of this server's (settle its squeezed buckets of the
// keys again).
func (s *Server) onMessage(ctx context.Context, msg string) {
	kind, origin, keys, ok := parseMessage(msg)
	t := s.table.Load()
	if !ok || t == nil {
		return
	}
	switch {
	case kind == msgShrink && origin != s.id:
		s.publish(ctx, msgShrunk, origin, s.shrinkHolders(ctx, t, keys))
	case kind == msgShrunk && origin == s.id:
		s.resettleSqueezed(ctx, t, keys)
	}
}

// shrinkHolders shrinks every local stream's buckets of keys (step 2; one
// batch per stream) and returns the keys it found held.
func (s *Server) shrinkHolders(ctx context.Context, t *ratelimit.Table, keys []string) []string {
	found := map[string]bool{}
	for _, h := range s.openStreams() {
		var held []string
		h.mu.Lock()
		for _, key := range keys {
			if bs := h.buckets[key]; bs != nil && bs.heldMax > 0 && !bs.degraded && !bs.awaiting {
				held = append(held, key)
				found[key] = true
			}
		}
		h.mu.Unlock()
		if len(held) > 0 {
			s.shrink(ctx, t, h, held)
		}
	}
	out := make([]string, 0, len(found))
	for _, key := range keys {
		if found[key] {
			out = append(out, key)
			found[key] = false
		}
	}
	return out
}

// resettleSqueezed settles every local bucket of keys that awaits an
// answer again (one batch per stream) and pushes the answers (step 3).
func (s *Server) resettleSqueezed(ctx context.Context, t *ratelimit.Table, keys []string) {
	for _, st := range s.openStreams() {
		s.push(st, func() []*rlqsv3.RateLimitQuotaResponse_BucketAction {
			st.mu.Lock()
			defer st.mu.Unlock()
			var bss []*bucketState
			for _, key := range keys {
				if bs := st.buckets[key]; bs != nil && bs.awaiting && !bs.degraded {
					bs.awaiting = false
					bss = append(bss, bs)
				}
			}
			return s.resettle(ctx, t, bss)
		})
	}
}

// openStreams returns the open streams.
func (s *Server) openStreams() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	return out
}
