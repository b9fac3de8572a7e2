package quota

import (
	"math"
	"time"

	"github.com/tollgate/tollgate/ratelimit"
)

// backstopTolerance is how much earlier than the server saw a report the
// Envoy may have admitted its requests (the spread of report latencies):
// the bound is computed that much later, so that it never falls below
// what the backstop admitted.
const backstopTolerance = 250 * time.Millisecond

// envoyElapsedStep: Envoy 1.40 reports time_elapsed in whole seconds,
// rounded down, so a report covers less than time_elapsed plus this.
const envoyElapsedStep = time.Second

// backstopBound bounds what one Envoy's local_ratelimit backstop can have
// admitted for one bucket. RLQS runs before the backstop and reports as
// admitted every request it let through, including those the backstop
// then refused (a blanket ALLOW_ALL before the first assignment, in
// failure mode open, after an expiry). The backstop holds one token
// bucket per limit of the bucket (ir.Limit.Backstop: the burst, refilled
// continuously at the limit's rate), so between two reports it admitted
// at most, for every limit, the tokens it held at the first plus the
// refill since. The bound keeps for each limit the level of a bucket that
// admitted exactly what was charged, starting full (a real bucket is
// never fuller), and charges a report min(admitted, ⌊level + refill⌋) of
// the tightest limit.
//
// It never charges less than the backstop admitted: whenever it cuts a
// report, some limit's modelled bucket is empty, and since that bucket was
// last full it has been charged its burst plus its refill, which is as
// much as the real bucket can have admitted over that span (each refill
// counts the longer of the server's interval between the reports, plus
// backstopTolerance, and the interval Envoy reports: a report the server
// saw late does not shorten the next one's refill).
// It may charge more than was admitted (the bound cannot tell a burst
// refused at once from requests spread over the interval), but never more
// than the tightest modelled bucket held plus its refill since the
// previous report, and over any span never more than one limit admits: a
// burst refused by the backstop costs at most what that Envoy could have
// admitted, not the whole burst.
// A new bound (a bucket's first report on a stream: a new Envoy, a
// reconnected one, a restarted server) starts full when the report's
// interval began (time_elapsed plus envoyElapsedStep), so it allows that
// report the burst plus the refill of the whole interval.
// A backstop bucket reset on Envoy that the bound does not see (its LRU
// evicting the consumer, a push applied late: see chargeAfterPushes) can
// admit up to one more burst than the bound while RLQS is on a blanket
// rule.
type backstopBound struct {
	levels []float64 // tokens per limit, as of at
	rates  []float64 // tokens per second per limit
	bursts []float64
	at     time.Time
}

// newBackstopBound returns the bound of a bucket with limits, full at now,
// met on copies backstops (route configurations: Table.Listeners) of one
// Envoy: each limit's burst and rate count copies times.
func newBackstopBound(limits []ratelimit.KeyedLimit, copies int, now time.Time) *backstopBound {
	b := &backstopBound{levels: make([]float64, len(limits)), rates: make([]float64, len(limits)),
		bursts: make([]float64, len(limits)), at: now}
	for i, l := range limits {
		maxTokens, perFill, fill := l.Limit.Backstop()
		b.bursts[i] = float64(copies) * float64(maxTokens)
		b.rates[i] = float64(copies) * float64(perFill) / fill.Seconds()
		b.levels[i] = b.bursts[i]
	}
	return b
}

// span is how long the bound refills for a report seen at now that
// covers reported (Envoy's time_elapsed since its previous report of the
// bucket): the longer of the server's and Envoy's intervals, so that a
// report the server saw late (a slow settlement ahead of it on the stream,
// a pause) does not shorten the next one's refill below Envoy's.
func (b *backstopBound) span(reported time.Duration, now time.Time) float64 {
	return max(0, now.Sub(b.at).Seconds(), reported.Seconds())
}

// addBursts lets the bound's next report charge n more bursts of every
// limit (backstops rebuilt full by pushes within its interval).
func (b *backstopBound) addBursts(n int) {
	for i := range b.levels {
		b.levels[i] += float64(n) * b.bursts[i]
	}
}

// allowance is the most the bound lets a report charge: the tightest
// limit's level plus its refill over span (and the tolerance).
func (b *backstopBound) allowance(span float64) float64 {
	limit := math.Inf(1)
	for i := range b.levels {
		limit = min(limit, b.levels[i]+b.rates[i]*(span+backstopTolerance.Seconds()))
	}
	return limit
}

// charge returns how much of admitted (what RLQS reports as allowed) to
// charge for a report seen at now covering reported (Envoy's
// time_elapsed), and records it.
func (b *backstopBound) charge(admitted uint64, reported time.Duration, now time.Time) uint64 {
	if len(b.levels) == 0 {
		return admitted
	}
	span := b.span(reported, now)
	c := capAt(admitted, b.allowance(span))
	for i := range b.levels {
		b.levels[i] = min(b.bursts[i], b.levels[i]+b.rates[i]*span-float64(c))
	}
	b.at = now
	return c
}

// capAt returns admitted, or ⌊limit⌋ when that is less.
func capAt(admitted uint64, limit float64) uint64 {
	if limit < float64(admitted) {
		return uint64(max(0, math.Floor(limit)))
	}
	return admitted
}

// chargeAfterPushes returns how much of admitted to charge for a report
// seen at now, covering elapsed, when pushes (≥ 1) policy pushes came since
// the bucket's previous report (old's), and the bound for the next reports
// (of limits met on copies backstops, the new table's). Envoy 1.40 rebuilds a route's
// local_ratelimit buckets, full, on every route configuration update
// (e2e TestQuotaBackstopResetByPush), so the backstop can have admitted
// what old allows plus, for each push, a fresh burst, plus the refill
// since: the charge is capped at that. The next bound starts full at now
// (the last fresh bucket may not have been charged anything).
//
// A push whose route configuration reaches the Envoy after the bucket's
// next report (an Envoy slow to apply it, or cut off from xDS) resets the
// backstop without the bound knowing: up to one burst admitted uncharged
// while RLQS is on a blanket rule.
func chargeAfterPushes(old *backstopBound, limits []ratelimit.KeyedLimit, copies int, pushes, admitted uint64, elapsed time.Duration, now time.Time) (uint64, *backstopBound) {
	next := newBackstopBound(limits, copies, now)
	if len(limits) == 0 {
		return admitted, next
	}
	span := old.span(elapsed+envoyElapsedStep, now)
	fresh := math.Inf(1)
	for i := range next.levels {
		fresh = min(fresh, float64(pushes)*next.bursts[i]+next.rates[i]*(span+backstopTolerance.Seconds()))
	}
	return capAt(admitted, old.allowance(span)+fresh), next
}
