//go:build !race

package translator

// raceDetector reports whether the tests run under the race detector
// (see raceSampler).
const raceDetector = false
