//go:build !race

package controlplane

// raceDetector reports whether the tests run under the race detector.
const raceDetector = false
