package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/jwttest"
)

// tokenTTL is the lifetime of every minted token; a run never outlives it.
const tokenTTL = time.Hour

// tokens are the RS256 credentials of a run, all for the same caller.
type tokens struct {
	jwks string
	// same is the one token of the "same token" rows, as a client that
	// reuses its token sends it.
	same string
	// pool holds distinct tokens (distinct "jti") for the "first seen" rows.
	pool []string
}

// mintTokens signs one token and a pool of n distinct ones, on every core
// (an RS256 signature takes about 1 ms).
func mintTokens(n int) (*tokens, error) {
	iss, err := jwttest.New(benchIssuer, benchAudience)
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	t := &tokens{jwks: iss.JWKS(), pool: make([]string, n)}
	if t.same, err = iss.Token("alice", []string{benchRole}, tokenTTL, 0); err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make([]error, runtime.GOMAXPROCS(0))
	for g := range errs {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && errs[g] == nil; i = int(next.Add(1)) - 1 {
				t.pool[i], errs[g] = iss.Token("alice", []string{benchRole}, tokenTTL, i+1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("mint token pool: %w", err)
		}
	}
	return t, nil
}

// rotation hands out indices into a pool of n distinct tokens, cycling, so
// that no cache sees a token twice:
//   - an LRU cache smaller than n (Envoy jwt_authn's, 100 tokens) never
//     hits when the pool cycles;
//   - a cache that may hold the whole pool (ours, 10 000 tokens) is
//     replaced by an empty one (reset) every n/2 indices. Requests in
//     flight around a reset may be checked by the cache before or after
//     it, so a cache sees the indices of its own half-cycle plus at most
//     the few in flight on either side: fewer than n consecutive indices,
//     each token once, as long as fewer than n/4 requests are in flight.
//     The driver reports the cache's hit counter rather than trusting
//     this.
type rotation struct {
	n      int64
	next   atomic.Int64
	reset  func() error // nil: nothing to empty
	failed atomic.Bool  // a reset failed
}

func newRotation(n int, reset func() error) *rotation {
	return &rotation{n: int64(n), reset: reset}
}

// index returns the next index, resetting the cache first when due.
func (r *rotation) index() int {
	i := r.next.Add(1) - 1
	if r.reset != nil && i > 0 && i%(r.n/2) == 0 {
		if err := r.reset(); err != nil {
			r.failed.Store(true)
		}
	}
	return int(i % r.n)
}

// err reports whether a cache reset failed, which voids the run.
func (r *rotation) err() error {
	if r.failed.Load() {
		return fmt.Errorf("a verification cache reset failed during the run")
	}
	return nil
}
