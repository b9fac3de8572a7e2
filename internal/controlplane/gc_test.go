package controlplane

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
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

// TestPushMemoryRaisesUntilACollection: a target raised for a small heap
// drops to compileGCPercent once a collection ran, so a heap that grows
// past the floor is collected as before.
func TestPushMemoryRaisesUntilACollection(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	var m pushMemory
	m.enter()
	if got := gcPercent(); got <= compileGCPercent {
		t.Skipf("target %d: the test's heap is too large to be raised", got)
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != compileGCPercent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := gcPercent(); got != compileGCPercent {
		t.Errorf("target %d after a collection, want %d", got, compileGCPercent)
	}
	m.done()
	m.release.Stop()
	m.restore()
	if got := gcPercent(); got != 100 {
		t.Errorf("target %d after the release, want 100 back", got)
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
