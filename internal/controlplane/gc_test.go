package controlplane

import (
	"runtime/debug"
	"testing"
)

// TestPushMemory: a push runs at pushGCPercent of the live heap, and the
// target before the first push of a burst comes back at the release; a
// lower target or none (off) is kept.
func TestPushMemory(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	tests := []struct {
		before, pushes int
		during         bool // pushGCPercent during the pushes, else before
	}{
		{before: 100, pushes: 1, during: true},
		{before: 400, pushes: 3, during: true},
		{before: 50, pushes: 2},
		{before: -1, pushes: 1},
	}
	for _, tt := range tests {
		debug.SetGCPercent(tt.before)
		want := tt.before
		if tt.during {
			want = pushGCPercent(liveHeap())
		}
		var m pushMemory
		for range tt.pushes {
			m.enter()
			if got := gcPercent(); got != want {
				t.Errorf("GOGC %d: %d during a push, want %d", tt.before, got, want)
			}
			m.done()
		}
		if got := gcPercent(); got != want {
			t.Errorf("GOGC %d: %d after the pushes, want %d until the release", tt.before, got, want)
		}
		m.release.Stop()
		m.restore()
		if got := gcPercent(); got != tt.before {
			t.Errorf("GOGC %d: %d after the release, want it back", tt.before, got)
		}
	}
}

// gcPercent returns the collector's target.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// TestPushGCPercent: a small live heap may grow to pushHeapFloor before a
// collection (within maxPushGCPercent); a large one, such as a 10,000-route
// policy's, keeps compileGCPercent.
func TestPushGCPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live uint64
		want int
	}{
		{live: 0, want: compileGCPercent}, // before the first collection
		{live: 1 * mib, want: maxPushGCPercent},
		{live: 8 * mib, want: 300},  // 1,000 routes: 8 → 32 MiB
		{live: 16 * mib, want: 100}, // 16 → 32 MiB
		{live: 20 * mib, want: compileGCPercent},
		{live: 60 * mib, want: compileGCPercent}, // 10,000 routes
	}
	for _, tt := range tests {
		if got := pushGCPercent(tt.live); got != tt.want {
			t.Errorf("live heap %d MiB: %d%%, want %d%%", tt.live/mib, got, tt.want)
		}
	}
}
