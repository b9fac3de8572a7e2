package controlplane

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeGC is a collector target register for pushMemory.setPercent: the
// process's own target is shared with every other Controller of a test
// binary, whose releases fire whenever.
type fakeGC struct {
	mu  sync.Mutex
	pct int
}

func (f *fakeGC) set(pct int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.pct
	f.pct = pct
	return old
}

func (f *fakeGC) get() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pct
}

// TestPushMemory: a push runs at pushGCPercent of the live heap, and the
// target before the first push of a burst comes back at the release; a
// lower target or none (off) is kept.
func TestPushMemory(t *testing.T) {
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
		gc := &fakeGC{pct: tt.before}
		m := pushMemory{setPercent: gc.set}
		want := tt.before
		if tt.during {
			want = pushGCPercent(liveHeap())
		}
		for range tt.pushes {
			m.enter()
			// A collection meanwhile may lower a raised target (the next test).
			if got := gc.get(); got != want && (!tt.during || got != compileGCPercent) {
				t.Errorf("GOGC %d: %d during a push, want %d", tt.before, got, want)
			}
			m.done()
		}
		m.release.Stop()
		m.restore()
		if got := gc.get(); got != tt.before {
			t.Errorf("GOGC %d: %d after the release, want it back", tt.before, got)
		}
	}
}

// TestPushMemoryRaisesUntilACollection: a target raised for a small heap
// drops to compileGCPercent once a collection ran, so a heap that grows
// past the floor is collected as before; the release restores the target
// from before the push.
func TestPushMemoryRaisesUntilACollection(t *testing.T) {
	gc := &fakeGC{pct: 100}
	m := pushMemory{setPercent: gc.set}
	m.enter()
	if got := gc.get(); got <= compileGCPercent {
		t.Skipf("target %d: the test's heap is too large to be raised", got)
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gc.get() != compileGCPercent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := gc.get(); got != compileGCPercent {
		t.Errorf("target %d after a collection, want %d", got, compileGCPercent)
	}
	m.done()
	m.release.Stop()
	m.restore()
	if got := gc.get(); got != 100 {
		t.Errorf("target %d after the release, want 100 back", got)
	}
}

// TestPushMemoryLeavesOthersTargets: the release and the cleanup change
// the target only while it is still the one this pushMemory set.
func TestPushMemoryLeavesOthersTargets(t *testing.T) {
	gc := &fakeGC{pct: 100}
	m := pushMemory{setPercent: gc.set}
	m.enter()
	m.done()
	gc.set(123) // another Controller's
	m.release.Stop()
	m.restore()
	if got := gc.get(); got != 123 {
		t.Errorf("target %d after the release, want 123 (not this one's)", got)
	}
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
