//go:build !race

package racesample

// Enabled reports whether the binary runs under the race detector.
const Enabled = false
