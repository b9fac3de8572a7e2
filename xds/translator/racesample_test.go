package translator

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// raceStride is the share of inputs (one in raceStride) the differential
// tests of the parallel and reuse paths check under the race detector.
const raceStride = 8

// raceSampler picks the inputs a differential test checks: all of them
// without the race detector; under it, one in raceStride, from an offset
// that changes from run to run (so that the runs check every input in
// turn). These tests run 15 times slower under -race (96 s of the
// package's 110 s on a busy 2-core machine, 6 s without it); a sample
// still runs every concurrent path under the detector, and `make test`
// runs the tests again in full without it (TRANSLATOR_FULL_TESTS in the
// Makefile).
type raceSampler struct {
	offset int // -1: keep every input
	n      int // inputs offered so far
}

// newRaceSampler returns the sampler of one test, and logs its offset
// under the race detector: TOLLGATE_RACE_OFFSET=<offset> repeats a run's
// sample.
func newRaceSampler(t *testing.T) *raceSampler {
	t.Helper()
	if !raceDetector {
		return &raceSampler{offset: -1}
	}
	offset := rand.IntN(raceStride)
	if s := os.Getenv("TOLLGATE_RACE_OFFSET"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= raceStride {
			t.Fatalf("TOLLGATE_RACE_OFFSET=%q: want an integer in [0, %d)", s, raceStride)
		}
		offset = n
	}
	t.Logf("race detector: checking one input in %d from offset %d (TOLLGATE_RACE_OFFSET=%d repeats this sample)",
		raceStride, offset, offset)
	return &raceSampler{offset: offset}
}

// keep is called once per input, in a fixed order, and says whether the
// test checks it.
func (s *raceSampler) keep() bool {
	i := s.n
	s.n++
	return s.offset < 0 || i%raceStride == s.offset
}

// atLeast is min scaled to the share of inputs s keeps, for a test's
// "checked enough" bound.
func (s *raceSampler) atLeast(min int) int {
	if s.offset < 0 {
		return min
	}
	return min / raceStride
}

// String describes the sample for failure messages.
func (s *raceSampler) String() string {
	if s.offset < 0 {
		return "every input"
	}
	return fmt.Sprintf("one input in %d from offset %d", raceStride, s.offset)
}
