package quota

import (
	"context"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"

	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// Abandoning idle buckets. Envoy 1.40 never forgets an RLQS bucket by
// itself: every bucket it built (one per route, tier and consumer or client
// address) is in every report, every 5 s, for as long as it runs. A report
// then costs the server and Redis one settlement per consumer ever seen (on
// a public route, per client address), and from ~650–900 buckets on no
// report fits the 64 KiB Envoy keeps while it retries a stream to a
// restarted server.
//
// A bucket reported idle (no request allowed or denied) AbandonAfter times
// in a row, whose limits have all refilled completely in the account (the
// settlement of that report finds each limit's whole burst left), is
// answered with an abandon action instead of an assignment:
// Envoy 1.40 erases it from its bucket cache (it is no longer reported), and
// the next request of that consumer builds it again as a new bucket, under
// its no-assignment behaviour (the translator's ALLOW_ALL, DENY_ALL for a
// deny bucket) behind the per-Envoy backstop, reported at once and assigned
// from the account as any newcomer. What stays:
//
//   - the account: the limit's TAT (Redis) is never touched by
//     abandonment, so a returning consumer gets what its limit has left,
//     not a fresh limit;
//   - the backstop (local_ratelimit, per Envoy), which knows nothing of
//     RLQS buckets.
//
// What goes: the participant's record in the account (its share, demand
// and holding, released at once rather than held for AssignmentTTL +
// holdMargin, so the others' shares of the rate are not held back by a
// participant that no longer admits anything), and the server's state of
// the bucket (the tollgate_rlqs_buckets gauge goes down).
//
// What it costs: requests Envoy admits from the old bucket between building
// the idle report and applying the abandon action (2–17 ms after its
// report tick, measured with small reports; the action is sent as soon as
// the report's ripe buckets are settled, before its other buckets, so the
// window does not grow with the report) are counted in a bucket Envoy then drops, so they
// are never reported nor charged: at most that bucket's tokens (each
// Envoy's backstop still counts them). Aimed at that window (AbandonAfter
// 1, bursts 0–40 ms after each tick) 10 of 299 admitted requests went
// uncharged over 90 abandons. The returning consumer's first requests
// pass under the no-assignment behaviour until its assignment lands
// (~1 ms, bounded per Envoy by the backstop; reported and charged), as for
// any new consumer: the newcomer terms of the bound (doc.go) apply again
// at each return, at most once per AbandonAfter idle reports per Envoy.
//
// Why only refilled buckets: until its assignment lands, a rebuilt bucket
// is held only by the backstops of its Envoy (the full limit per Envoy and
// listener), which refill at the limit's rate whatever the account says.
// Abandoning any idle bucket let each return admit what every backstop
// held: 6 an hour, one Envoy with two listeners, one request, idle for one
// report, then a burst of 12 on each listener: 12 admitted (e2e
// TestQuotaAbandonWaitsForAFullAccount; 6 now), and with k backstops a
// consumer returning every 30 s approached k times the limit's rate. Now a
// return finds the limit's whole burst in the account; the window may
// still admit up to one burst per backstop (as a first contact does), but
// it is charged, and the next abandonment waits for the account to refill
// completely again (up to two bursts' refill time: settle.lua keeps a TAT
// within two bursts of now). The cost: a bucket that used a long window's
// limit (6 an hour: 10 minutes per request) is kept until it has refilled.

// DefaultAbandonAfter is Options.AbandonAfter's default: a bucket is
// abandoned after 6 idle reports (30 s without a request). Keeping an idle
// bucket costs one settlement per report; abandoning it costs one
// settlement when its consumer comes back (the new bucket's first report)
// plus that report's round trip under the no-assignment behaviour. Six
// reports keep consumers that pause for less than half a minute (a client
// polling every 10–20 s) from being rebuilt on every request, and bound an
// Envoy's buckets by the consumers seen in the last 30–35 s instead of all
// it ever saw.
const DefaultAbandonAfter = 6

// abandonAfter is the number of idle reports after which a bucket is
// abandoned, 0 for never.
func (s *Server) abandonAfter() int {
	switch n := s.opts.AbandonAfter; {
	case n < 0:
		return 0
	case n == 0:
		return DefaultAbandonAfter
	default:
		return n
	}
}

// idleReport records a report of bs (allowed and denied requests, covering
// a positive time or not) and reports whether the bucket is ripe for
// abandoning: reported idle abandonAfter times in a row, with nothing left
// to charge, its last answer not a failure mode (a bucket the account
// could not settle keeps its state until it can) and settled before. A
// ripe bucket is settled as usual; abandon then decides.
func (s *Server) idleReport(bs *bucketState, allowed, denied uint64, covers bool) bool {
	if allowed != 0 || denied != 0 || !covers {
		bs.idle = 0
		return false
	}
	bs.idle++
	n := s.abandonAfter()
	return n > 0 && bs.idle >= n && bs.pending == 0 && !bs.degraded && !bs.fresh
}

// abandon settles the ripe buckets of bss (a report's buckets of st, whose
// lock and send lock are held) and returns their answers (per[i] for
// bss[i], nil for the others). Those this settlement found owing nothing
// are abandoned: sent their abandon actions at once, in a response of
// their own, before the rest of the report is settled (requests Envoy
// admits from such a bucket until it applies the action are never
// reported: the window is one settlement, not the whole report's); then
// forgotten and their participants released in the account (one batch; a
// failed release only leaves a share held until its hold expires, as for
// a dead Envoy). A bucket some limit of which has not refilled completely
// (owes) keeps its assignment: its Envoy's backstops may hold more than
// the account has left, and a rebuilt bucket passes under its
// no-assignment rule, held by them alone, until its first assignment.
func (s *Server) abandon(ctx context.Context, st *stream, t *ratelimit.Table, bss []*bucketState, ripe []bool) [][]*rlqsv3.RateLimitQuotaResponse_BucketAction {
	per := make([][]*rlqsv3.RateLimitQuotaResponse_BucketAction, len(bss))
	var idx []int
	var ripeBss []*bucketState
	for i, bs := range bss {
		if ripe[i] {
			idx, ripeBss = append(idx, i), append(ripeBss, bs)
		}
	}
	if len(idx) == 0 {
		return per
	}
	settled := s.decideEach(ctx, t, ripeBss)
	var gone []*rlqsv3.RateLimitQuotaResponse_BucketAction
	var sts []Settlement
	for j, i := range idx {
		bs := bss[i]
		if bs.degraded || bs.owes {
			per[i] = settled[j]
			continue
		}
		delete(st.buckets, bucketKey(bs.id))
		if _, limits, ok := bs.parse(t); ok && len(limits) > 0 {
			sts = append(sts, Settlement{Participant: bs.participant, Limits: limits, Release: true})
		}
		gone = append(gone, abandonAction(bs.id))
		s.opts.Metrics.abandoned()
		s.log.Debug("rlqs: bucket abandoned", "participant", bs.participant, "idle_reports", bs.idle)
	}
	if len(gone) > 0 {
		if err := s.sendLocked(st, &rlqsv3.RateLimitQuotaResponse{BucketAction: gone}); err != nil {
			s.log.Debug("rlqs: abandon actions not sent", "err", err)
		}
	}
	if until := s.downUntil.Load(); len(sts) > 0 && (until == 0 || time.Now().UnixNano() >= until) {
		if _, errs := settleBatch(ctx, s.opts.Account, sts); firstErr(errs) != nil {
			s.log.Debug("rlqs: abandoned participants not released; their shares expire with their hold", "err", firstErr(errs))
		}
	}
	return per
}

// refilled reports whether every limit's state is its whole burst: the
// account holds nothing of what the limit admitted (its TAT is past).
func refilled(limits []counter.Limit, states []KeyState) bool {
	if len(states) != len(limits) {
		return false
	}
	for i, l := range limits {
		interval, tolerance, err := counter.Params(l)
		if err != nil || states[i].Remaining < uint64((tolerance+interval)/interval) {
			return false
		}
	}
	return true
}

// abandonAction tells Envoy to drop the bucket id.
func abandonAction(id *rlqsv3.BucketId) *rlqsv3.RateLimitQuotaResponse_BucketAction {
	return &rlqsv3.RateLimitQuotaResponse_BucketAction{
		BucketId:     id,
		BucketAction: &rlqsv3.RateLimitQuotaResponse_BucketAction_AbandonAction_{AbandonAction: &rlqsv3.RateLimitQuotaResponse_BucketAction_AbandonAction{}},
	}
}

// firstErr returns the first non-nil error of errs.
func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
