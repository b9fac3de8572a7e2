// Package racesample picks the inputs a differential test checks under the
// race detector: all of them without it; under it, one in Stride, from an
// offset that changes from run to run, so that successive runs check every
// input in turn. Such tests run 10-15 times slower under -race; a sample
// still runs every concurrent path under the detector, and `make test`
// runs them again in full without it (FULL_TESTS in the Makefile).
package racesample

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// Stride is the share of inputs (one in Stride) checked under the race
// detector.
const Stride = 8

// OffsetEnv names the environment variable that repeats a run's sample:
// the offset the run logged.
const OffsetEnv = "TOLLGATE_RACE_OFFSET"

// Sampler says which inputs of one test to check. Not safe for concurrent
// use: a test asks in a fixed order.
type Sampler struct {
	offset int // -1: keep every input
	n      int // inputs offered so far
}

// New returns the sampler of the test t. Under the race detector it logs
// its offset, chosen at random or taken from OffsetEnv (t fails on a
// malformed value).
func New(t testing.TB) *Sampler {
	t.Helper()
	if !Enabled {
		return &Sampler{offset: -1}
	}
	offset := rand.IntN(Stride)
	if s := os.Getenv(OffsetEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= Stride {
			t.Fatalf("%s=%q: want an integer in [0, %d)", OffsetEnv, s, Stride)
		}
		offset = n
	}
	t.Logf("race detector: checking one input in %d from offset %d (%s=%d repeats this sample)",
		Stride, offset, OffsetEnv, offset)
	return &Sampler{offset: offset}
}

// Keep is called once per input, in a fixed order, and says whether the
// test checks it.
func (s *Sampler) Keep() bool {
	i := s.n
	s.n++
	return s.offset < 0 || i%Stride == s.offset
}

// AtLeast is min scaled to the share of inputs s keeps, for a test's
// "checked enough" bound.
func (s *Sampler) AtLeast(min int) int {
	if s.offset < 0 {
		return min
	}
	return min / Stride
}

// String describes the sample for failure messages.
func (s *Sampler) String() string {
	if s.offset < 0 {
		return "every input"
	}
	return fmt.Sprintf("one input in %d from offset %d", Stride, s.offset)
}
