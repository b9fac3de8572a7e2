package counter

import (
	"context"
	"sync"
	"time"
)

// Memory is the in-memory backend: the same GCRA as Redis, for one process
// (make dev, and the "local" failure mode). One mutex makes a Take over
// several limits atomic; expired keys are dropped as the map is swept.
type Memory struct {
	now func() time.Time

	mu    sync.Mutex
	tats  map[string]int64 // key → theoretical arrival time, µs
	sweep int64            // next sweep, µs
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-memory backend reading time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, tats: map[string]int64{}}
}

// Take implements Backend.
func (m *Memory) Take(_ context.Context, limits []Limit) (bool, []Result, error) {
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maybeSweep(now)
	allowed := true
	for _, l := range limits {
		if !params(l).admits(m.tats[l.Key], now) {
			allowed = false
		}
	}
	results := make([]Result, len(limits))
	for i, l := range limits {
		g, tat := params(l), m.tats[l.Key]
		results[i] = g.result(tat, now, allowed)
		if allowed {
			m.tats[l.Key] = max(tat, now) + g.t
		}
	}
	return allowed, results, nil
}

// maybeSweep drops keys whose bucket is full again, at most once a minute.
func (m *Memory) maybeSweep(now int64) {
	if now < m.sweep {
		return
	}
	for k, tat := range m.tats {
		if tat <= now {
			delete(m.tats, k)
		}
	}
	m.sweep = now + time.Minute.Microseconds()
}
