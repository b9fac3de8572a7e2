package quota

import (
	"context"
	"time"

	"github.com/tollgate/tollgate/ratelimit/counter"
)

// Settlement is one participant's usage report for the limits of one
// bucket. A participant is one Envoy's bucket (a stream and a bucket id).
type Settlement struct {
	Participant string
	// Limits of the bucket; the account charges and shares each key.
	Limits []counter.Limit
	// Used requests the participant admitted since its last report.
	Used uint64
	// Demand is the participant's recent demand (admitted and denied
	// requests per second); it decides the participant's share.
	Demand float64
	// Hold is how long the share granted now stays reserved (the
	// assignment's time to live plus a margin).
	Hold time.Duration
	// Keep: a settlement without a report that changes only the share
	// (rebalance.go): the participant keeps holding what it held (its
	// last grant plus its old share's refill since), which it may have
	// admitted without reporting yet, and the reply's Grant is that.
	Keep bool
	// Release: the participant leaves (its Envoy was told to abandon the
	// bucket, abandon.go): it is dropped from every key's shares at once,
	// so its share and holding no longer count against the others; no TAT
	// changes (Used must be 0) and the reply's Share and Grant are 0.
	Release bool
}

// KeyState is one limit's state after a settlement.
type KeyState struct {
	// Remaining is what the limit admits right now over all participants,
	// after Used was charged: floor((τ + T − d) / T), ≥ 0 (counter's GCRA).
	Remaining uint64
	// Share is the fraction of the limit's rate granted to the
	// participant, in [0.1/n, 1] (n live participants of the key): the
	// shares of one key add up to at most 1, except that a participant
	// never gets less than its floor 0.1/n even when the others' last
	// shares leave less (a new Envoy while one Envoy held the whole
	// limit): the excess lasts until those others next report (one report
	// interval), who then get min(target, 1 − others' shares).
	Share float64
	// Grant is the number of requests the participant may admit at once
	// from now on (its bucket, refilled at Share of the rate):
	// min(Share·Remaining, Remaining − Σ others' holdings), where another
	// participant holds its last grant plus its share of the refill since
	// (it may have spent them without reporting yet). ≥ 0.
	Grant float64
}

// Account is the shared truth behind the assignments: a GCRA per limit key
// charged with the reported usage (Redis time), and the shares granted to
// the participants of each key.
//
// Contract: Settle charges Used to every limit (a charge is never refused:
// a TAT may run ahead of now by up to twice the bucket, a debt paid back
// by refill), records Demand, drops participants whose hold expired, and
// grants the participant max(0.1/n, min(target, 1 − Σ others' shares)),
// where target = 0.9 × Demand/ΣDemand + 0.1/n (n = live participants):
// every live participant keeps a floor of the rate, so that its requests
// are not refused outright while others' shares (a lone participant holds
// 1) or a dead participant's (held until its hold expires) cover the
// whole limit. A Release settlement only drops the participant from every
// key's shares. The result has one KeyState per limit, in order. An error
// means the account could not decide (the caller applies the failure
// mode).
type Account interface {
	Settle(ctx context.Context, s Settlement) ([]KeyState, error)
}

// BatchAccount is an Account that settles many settlements at once: the
// server hands it every bucket of a usage report (Envoy reports all its
// buckets every 5 s), so an Envoy with n active consumers costs one
// batch, not n round trips.
//
// Contract: SettleBatch settles each of ss as Settle would (in order, each
// seeing the ones before it) and returns, for each, its key states or its
// error (errs[i] for ss[i]); one settlement's error does not fail the
// others.
type BatchAccount interface {
	Account
	SettleBatch(ctx context.Context, ss []Settlement) (states [][]KeyState, errs []error)
}

// Share parameters (see Account).
const (
	demandWeight = 0.9
	shareFloor   = 1 - demandWeight
	// debtBuckets bounds how far a charge may push a TAT past the bucket.
	debtBuckets = 2
)

// participant is one participant's record under a key.
type participant struct {
	share   float64
	demand  float64
	expires int64 // µs
	grant   float64
	at      int64 // µs: when grant was given
}

// holding is what a participant may have admitted since its last
// settlement without reporting it: its grant and its share of the refill
// (interval T µs) since, up to now.
func (p participant) holding(now, interval int64) float64 {
	return p.grant + p.share*float64(max(0, now-p.at))/float64(interval)
}

// grantOf is a participant's grant (see KeyState.Grant) with remaining
// requests left and others' holdings.
func grantOf(share float64, remaining uint64, others float64) float64 {
	return max(0, min(share*float64(remaining), float64(remaining)-others))
}

// grant computes the participant's new share among parts (which includes
// it, with its new demand and expiry) and stores it.
func grant(parts map[string]participant, me string) float64 {
	var total, others float64
	for id, p := range parts {
		total += p.demand
		if id != me {
			others += p.share
		}
	}
	n := float64(len(parts))
	target := shareFloor / n
	if total > 0 {
		target += demandWeight * parts[me].demand / total
	} else {
		target += demandWeight / n
	}
	s := max(shareFloor/n, min(target, 1-others))
	p := parts[me]
	p.share = s
	parts[me] = p
	return s
}

// charge applies the GCRA charge of used requests to the TAT tat (µs, 0
// when absent) at now and returns the new TAT and the remaining requests.
func charge(tat, now, interval, tolerance int64, used uint64) (newTAT int64, remaining uint64) {
	tat = max(tat, now) + int64(used)*interval
	tat = min(tat, now+debtBuckets*(tolerance+interval))
	d := tat - now
	return tat, uint64(max(0, (tolerance+interval-d)/interval))
}
