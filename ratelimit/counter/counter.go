// Package counter holds the rate-limit counters: the GCRA algorithm
// executed atomically in Redis (one Lua script per request) or in memory.
// (Implementations and the contract test suite live beside this file.)
package counter

import (
	"context"
	"time"
)

// Limit is one limit to enforce for a request.
type Limit struct {
	// Key identifies the counter. Keys of one consumer carry the same Redis
	// hash tag ("{consumer}") so one script can see all of them on a cluster.
	Key string
	// Requests per Per, with a bucket of Burst (≥ Requests; 0 = Requests).
	Requests uint64
	Per      time.Duration
	Burst    uint64
}

// Result is the state of one limit after a Take.
type Result struct {
	// Remaining requests that would be admitted right now.
	Remaining uint64
	// ResetAfter until the bucket is full again.
	ResetAfter time.Duration
	// RetryAfter until one more request would be admitted (0 when one
	// would be admitted now).
	RetryAfter time.Duration
}

// Backend takes one request's worth from every limit at once.
//
// Contract: Take is all-or-nothing. If every limit admits the request,
// each is charged one and allowed is true; if any would reject it, none is
// charged. results has one entry per limit, in order. An error means the
// backend could not decide (the caller applies its failure mode).
type Backend interface {
	Take(ctx context.Context, limits []Limit) (allowed bool, results []Result, err error)
}
