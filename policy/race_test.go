//go:build race

package policy

// raceDetector reports whether the tests run under the race detector
// (see RaceSample).
const raceDetector = true
