package counter

import (
	"context"
	"time"
)

// block is what an OverLimitCache remembers of one limit of a rejected
// Take, on its local clock (µs).
type block struct {
	tat     int64 // the limit's TAT as the backend reported it
	until   int64 // every Take with this limit is rejected until then; 0: it admitted
	horizon int64 // the entry is dropped then: the longest block of its Take
}

func (b block) expired(now int64) bool { return b.horizon <= now }

// OverLimitCache wraps a (Redis) backend to shed its load during abuse.
// When the backend rejects a Take, the cache remembers every limit of it:
// the TAT the backend reported and, for each limit that rejected it, that
// nothing can be admitted before now + RetryAfter. A later Take whose
// limits are all remembered and one of them still blocks is rejected
// without a round trip; any other Take goes to the backend, and when
// admitted refreshes the TATs of the remembered limits it charged.
//
// It never admits: every Take it does not reject goes to the backend, so
// it cannot admit more than the backend would. Nor does it reject what the
// backend would admit: a blocking limit's TAT cannot move until TAT − τ
// (no replica can be admitted by it before then), and the block is
// measured from before the round trip, so it ends no later than the
// backend's. Its Results are the backend's for the blocking limits
// (RetryAfter and ResetAfter decrease with time), counted from the end of
// the round trip, so a client that waits its RetryAfter is never refused
// for being early (TestOverLimitRetryAfterIsNeverEarly); for the other limits
// they are computed from the last TAT seen, which admissions on other
// replicas may have moved since. Entries are dropped when the longest
// block of their Take ends. It is safe for concurrent use.
type OverLimitCache struct {
	backend Backend
	now     func() time.Time
	blocks  *shardedMap[block]
}

var _ Backend = (*OverLimitCache)(nil)

// NewOverLimitCache returns a cache in front of backend, on the clock now
// (time.Now when nil).
func NewOverLimitCache(backend Backend, now func() time.Time) *OverLimitCache {
	if now == nil {
		now = time.Now
	}
	return &OverLimitCache{backend: backend, now: now, blocks: newShardedMap[block]()}
}

// Take implements Backend.
func (c *OverLimitCache) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	if len(limits) == 0 {
		return c.backend.Take(ctx, limits)
	}
	var gbuf [smallTake]gcra
	gs, err := gcraParams(limits, gbuf[:])
	if err != nil {
		return false, nil, err
	}
	start := micros(c.now())
	if results, blocked := c.blocked(limits, gs, start); blocked {
		return false, results, nil
	}
	allowed, results, err := c.backend.Take(ctx, limits)
	if err == nil && len(results) == len(limits) {
		c.remember(limits, results, trip{start: start, end: micros(c.now())}, allowed)
	}
	return allowed, results, err
}

// trip is when a round trip to the backend started and ended (local µs):
// the backend decided somewhere between.
type trip struct{ start, end int64 }

// blocked reports whether a Take at now is known to be rejected (every
// limit remembered, one blocking), and then the Results of every limit.
func (c *OverLimitCache) blocked(limits []Limit, gs []gcra, now int64) ([]Result, bool) {
	var bbuf [smallTake]block
	found := bbuf[:0]
	known, isBlocked := true, false
	set := c.blocks.lock(limits)
	for _, l := range limits {
		b, ok := c.blocks.get(l.Key, now)
		found = append(found, b)
		known = known && ok
		isBlocked = isBlocked || b.until > now
	}
	c.blocks.unlock(set, now)
	if !known || !isBlocked {
		return nil, false
	}
	results := make([]Result, len(limits))
	for i, b := range found {
		results[i] = gs[i].result(b.tat, now)
	}
	return results, true
}

// remember records the limits of a rejected Take made in the round trip
// rt, or refreshes the remembered limits an admitted one charged. A block
// is measured from the trip's start, so it ends no later than the
// backend's; a TAT from its end, so the RetryAfter computed from it is
// never earlier than the backend's (later by at most the round trip).
func (c *OverLimitCache) remember(limits []Limit, results []Result, rt trip, admitted bool) {
	var longest time.Duration
	for _, r := range results {
		longest = max(longest, r.RetryAfter)
	}
	if !admitted && longest <= 0 {
		return // nothing blocks (not a GCRA backend)
	}
	now := rt.start
	horizon := now + longest.Microseconds()
	set := c.blocks.lock(limits)
	for i, l := range limits {
		b := block{tat: rt.end + results[i].ResetAfter.Microseconds(), horizon: horizon}
		if admitted {
			old, ok := c.blocks.get(l.Key, now)
			if !ok {
				continue
			}
			b.horizon = old.horizon
		} else if r := results[i].RetryAfter; r > 0 {
			b.until = now + r.Microseconds()
		}
		c.blocks.put(l.Key, b)
	}
	c.blocks.unlock(set, now)
}
