package policy

// raceStride is the share of inputs (one in raceStride) the differential
// tests of the parallel paths check under the race detector.
const raceStride = 8

// RaceDetector reports whether the tests run under the race detector.
const RaceDetector = raceDetector

// RaceSample returns in, or under the race detector every raceStride-th
// element of in (the first included). The differential tests that compare
// the parallel parse, load, validation and compilation with the sequential
// ones run 10-20 times slower under -race, where they made this package
// the slowest of `make test`'s unit stage (115 s of its ~190); a sample
// still runs every concurrent path under the detector, and `make test`
// runs the tests again in full without it (make test-policy-full).
func RaceSample[T any](in []T) []T {
	if !raceDetector {
		return in
	}
	out := make([]T, 0, len(in)/raceStride+1)
	for i := 0; i < len(in); i += raceStride {
		out = append(out, in[i])
	}
	return out
}
