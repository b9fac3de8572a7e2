package controlplane

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// compileGCPercent is the collector's target while a policy compiles and
// a push is applied. Compiling allocates several times what it keeps
// (10,000 routes: ~70 MB per push; the IR and the Envoy resources of both
// versions and the parse cache are live at the peak, ~33 MB marked), and
// at Go's default target of 100 the heap may grow to twice that live peak
// before a collection. Measured at 10,000 routes (bench/README.md, "Push
// at scale"): at 100, peak RSS 121-123 MB before the sixth session's
// smaller IR, 108-109 MB after it; at 75, 111 MB before and 89-100 MB
// after, the push as fast.
const compileGCPercent = 75

// pushHeapFloor is the heap a push may grow to before a collection when
// the live heap is small: a push of 1,000 routes allocates ~15 MB (compile
// ~8 MB, the diff, the store's JSON, the snapshot) over ~10 MB live, and at
// compileGCPercent it collected twice per push (gctrace), ~7 ms of CPU, the
// collector's idle workers taking both cores while Envoy applied the
// update. With the floor it collects after the push. From ~2,500 routes
// the live heap is large enough that compileGCPercent reaches the floor by
// itself, so large pushes (and their peak memory) are unchanged.
const pushHeapFloor = 32 << 20

// maxPushGCPercent bounds the target pushHeapFloor raises it to, so a
// nearly empty heap does not set a target of thousands of percent.
const maxPushGCPercent = 400

// releaseDelay is how long after the last push its memory is returned to
// the operating system: a burst of pushes reuses the memory instead of
// faulting it back in for each push.
const releaseDelay = 2 * time.Second

// pushMemory manages the collector around pushes: its target while a
// policy compiles and a push is applied, and the return of the pushes'
// memory to the operating system after them. The zero value is ready.
//
// The previous target comes back releaseDelay after the last push, not at
// its end: put back at once, a target lower than the push's would start a
// collection of the push's garbage right away, while the proxies are
// still taking the new configuration into service (1,000 routes: ACK →
// first 200 went from ~1.5 to ~5 ms). The release collects anyway.
//
// A raised target lasts until the first collection after enter: the floor
// spares a small heap collections, and a heap that grows past it (a large
// policy pushed to a control plane that served a small one, or none) is
// collected at compileGCPercent from then on, as before, instead of at a
// raised target of a much larger live heap.
type pushMemory struct {
	mu sync.Mutex
	// prev is the target before the first push since the last release,
	// and changed says that a push set another.
	prev    int
	changed bool
	// set is the target enter set last; restore and the cleanup change
	// the target only while it is still set's (another Controller in the
	// process, as in tests, may have set its own since).
	set int
	// raised counts the pushes that raised the target; the cleanup that
	// lowers it after a collection acts only for the latest.
	raised  int
	release *time.Timer
	// setPercent replaces debug.SetGCPercent in tests.
	setPercent func(int) int
}

// setGC sets the collector's target and returns the previous one.
func (m *pushMemory) setGC(pct int) int {
	if m.setPercent != nil {
		return m.setPercent(pct)
	}
	return debug.SetGCPercent(pct)
}

// collected is the object whose cleanup tells that a collection ran.
type collected struct{ _ *int }

// enter sets the collector's target for a push: pushGCPercent of the live
// heap. A target already at or below compileGCPercent (GOGC), or off, is
// left alone. A release due is put off until the push is done: call done
// after it.
func (m *pushMemory) enter() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.release != nil {
		m.release.Stop() // no release during a push
	}
	pct := pushGCPercent(liveHeap())
	prev := m.setGC(pct)
	if !m.changed && (prev < 0 || prev <= compileGCPercent) {
		m.setGC(prev)
		return
	}
	if !m.changed {
		m.prev, m.changed = prev, true
	}
	m.set = pct
	if pct > compileGCPercent {
		m.raised++
		runtime.AddCleanup(&collected{}, m.collected, m.raised)
	}
}

// collected lowers a raised target to compileGCPercent once a collection
// ran after the push that raised it (and no later push raised it again).
func (m *pushMemory) collected(raised int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed && m.raised == raised && m.replace(compileGCPercent) {
		m.set = compileGCPercent
	}
}

// replace sets the target pct if it is still m.set, and tells whether it
// did (m.mu held).
func (m *pushMemory) replace(pct int) bool {
	if cur := m.setGC(pct); cur != m.set {
		m.setGC(cur)
		return false
	}
	return true
}

// done schedules the release, releaseDelay after the last push: the
// previous target back, then the memory pushes used returned to the
// operating system. Compiling a large policy allocates several times what
// the served policy keeps (10,000 routes of YAML: ~190 MB allocated, ~20
// MB kept) and the Go runtime would hand it back only over minutes;
// meanwhile the control plane's resident memory would stay that of its
// largest push. The forced collection costs a few milliseconds of CPU,
// off any push's path.
func (m *pushMemory) done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.release == nil {
		m.release = time.AfterFunc(releaseDelay, m.restore)
		return
	}
	m.release.Reset(releaseDelay)
}

// restore puts the target before the pushes back and returns their memory
// to the operating system.
func (m *pushMemory) restore() {
	m.mu.Lock()
	if m.changed {
		m.replace(m.prev)
		m.changed = false
	}
	m.mu.Unlock()
	debug.FreeOSMemory()
}

// pushGCPercent is the target that lets a heap of live bytes grow to
// pushHeapFloor, at least compileGCPercent and at most maxPushGCPercent.
func pushGCPercent(live uint64) int {
	pct := compileGCPercent
	if live > 0 && live < pushHeapFloor {
		pct = max(pct, int((pushHeapFloor-live)*100/live))
	}
	return min(pct, maxPushGCPercent)
}

// liveHeap returns the heap the last collection found live, in bytes (0
// before the first collection).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
