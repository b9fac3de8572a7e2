// Package parallel spreads independent per-item work over goroutines so
// that the caller can merge the results in input order: the outcome never
// depends on how the items were split or scheduled.
package parallel

import (
	"runtime"
	"sync"
)

// Workers returns how many goroutines n items are spread over: 1 below
// minItems (starting goroutines costs more than it saves), else
// GOMAXPROCS, but never more than n.
func Workers(n, minItems int) int {
	if n < max(minItems, 2) {
		return 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), n))
}

// Chunks splits [0, n) into workers contiguous chunks of nearly equal size
// (fewer when n is smaller) and calls fn(chunk, lo, hi) for each, chunk
// counting from 0 in order, on a goroutine of its own; it returns once
// every call returned. With workers <= 1 it calls fn(0, 0, n) on the
// caller's goroutine. fn must only write state of its own chunk (or
// synchronise); reading shared state written before Chunks is safe.
func Chunks(n, workers int, fn func(chunk, lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for c := range workers {
		lo, hi := c*n/workers, (c+1)*n/workers
		wg.Go(func() { fn(c, lo, hi) })
	}
	wg.Wait()
}

// Map returns fn(i) for every i in [0, n), computed over workers
// goroutines in contiguous chunks, in index order.
func Map[T any](n, workers int, fn func(i int) T) []T {
	out := make([]T, n)
	Chunks(n, workers, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = fn(i)
		}
	})
	return out
}
