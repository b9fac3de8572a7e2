package jwkswatch

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// limiter calls bump at most once per interval. A withdrawal seen at least
// interval after the last bump is bumped at once; one seen sooner is
// bumped once at the end of that interval, together with every other
// withdrawal seen meanwhile (none is dropped).
type limiter struct {
	bump  func(reason string)
	now   func() time.Time
	after func(time.Duration, func()) *time.Timer

	mu       sync.Mutex
	interval time.Duration   // the least time between two bumps
	last     time.Time       // the last bump, zero before the first
	pending  map[string]bool // providers awaiting the timer's bump
	timer    *time.Timer     // set while a bump is pending
	stopped  bool
}

func newLimiter(interval time.Duration, bump func(string)) *limiter {
	return &limiter{interval: interval, bump: bump, now: time.Now, after: time.AfterFunc}
}

// withdrawn reports that provider's JWKS lost a key (the verifier's
// KeysWithdrawn hook, on its refresh goroutine).
func (l *limiter) withdrawn(provider string) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	if l.pending == nil {
		l.pending = map[string]bool{}
	}
	l.pending[provider] = true
	if l.timer != nil { // a bump is scheduled: it takes this one too
		l.mu.Unlock()
		return
	}
	now := l.now()
	if wait := l.last.Add(l.interval).Sub(now); !l.last.IsZero() && wait > 0 {
		l.timer = l.after(wait, l.fire)
		l.mu.Unlock()
		return
	}
	reason := l.takeLocked(now)
	l.mu.Unlock()
	l.bump(reason)
}

// fire is the scheduled bump.
func (l *limiter) fire() {
	l.mu.Lock()
	l.timer = nil
	if l.stopped || len(l.pending) == 0 {
		l.mu.Unlock()
		return
	}
	reason := l.takeLocked(l.now())
	l.mu.Unlock()
	l.bump(reason)
}

// takeLocked records a bump at now and returns its reason, the pending
// providers. Callers hold mu.
func (l *limiter) takeLocked(now time.Time) string {
	names := make([]string, 0, len(l.pending))
	for p := range l.pending {
		names = append(names, p)
	}
	slices.Sort(names)
	l.pending, l.last = nil, now
	return "keys withdrawn from the JWKS of provider(s) " + strings.Join(names, ", ")
}

// setInterval makes interval the least time between two bumps from now on
// (a bump already scheduled keeps its time).
func (l *limiter) setInterval(interval time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.interval = interval
}

// stop cancels a pending bump; later withdrawals are ignored.
func (l *limiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}
