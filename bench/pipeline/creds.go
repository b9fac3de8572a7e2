package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/jwttest"
)

const (
	// active is the population of credentials in use, each reused.
	active = 1000
	// freshTokens cycles more tokens than jwt_authn's 10,000-token cache
	// (and in order, so its LRU never hits): every request verifies.
	freshTokens = 12000
	// arrivals is the number of new consumers of the arrival run.
	arrivals = 10000
)

// mint signs n tokens in parallel; token i has subject sub(i) and jti i.
func mint(iss *jwttest.Issuer, n int, sub func(i int) string) ([]string, error) {
	out := make([]string, n)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n; i += len(errs) {
				out[i], errs[w] = iss.Token(sub(i), nil, 2*time.Hour, i)
				if errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("mint tokens: %w", err)
		}
	}
	return out, nil
}

// tokenSet is the JWT load: the active population, the fresh pool (same
// subjects) and the arrivals (all new subjects; moduleArrivals others, for
// the module's stack: the stacks share one Redis account).
type tokenSet struct {
	active, fresh, arrivals, moduleArrivals []string
}

func mintAll(iss *jwttest.Issuer) (*tokenSet, error) {
	var ts tokenSet
	var err error
	user := func(i int) string { return fmt.Sprintf("user-%d", i%active) }
	if ts.active, err = mint(iss, active, user); err != nil {
		return nil, err
	}
	if ts.fresh, err = mint(iss, freshTokens, user); err != nil {
		return nil, err
	}
	if ts.arrivals, err = mint(iss, arrivals, func(i int) string { return fmt.Sprintf("new-%d", i) }); err != nil {
		return nil, err
	}
	ts.moduleArrivals, err = mint(iss, arrivals, func(i int) string { return fmt.Sprintf("new-module-%d", i) })
	return &ts, err
}

// createKeys creates the active population of opaque API keys (the
// ext_authz rows; signedKeys makes the signed ones), one consumer each,
// through the admin API.
func createKeys(api *admin.Client) ([]string, error) {
	keys := make([]string, active)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < active; i += len(errs) {
				k, err := api.CreateKey(context.Background(), admin.CreateKeyRequest{Consumer: fmt.Sprintf("consumer-%d", i), Tier: "bench", Format: "opaque"})
				if err != nil {
					errs[w] = fmt.Errorf("create key %d: %w", i, err)
					return
				}
				keys[i] = k.Key
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// cycle returns a header function that walks vals in order with prefix.
func cycle(prefix string, vals []string) func(int) string {
	var mu sync.Mutex
	next := 0
	return func(int) string {
		mu.Lock()
		defer mu.Unlock()
		v := vals[next%len(vals)]
		next++
		return prefix + v
	}
}
