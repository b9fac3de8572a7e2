package counter

import (
	"context"
	"time"
)

// smallTake is the number of limits a Take handles without allocating
// scratch space (results aside).
const smallTake = 4

// tat is a stored theoretical arrival time (µs). Once it has passed, the
// bucket is full, which is the same as no entry at all.
type tat int64

func (t tat) expired(now int64) bool { return int64(t) <= now }

// MemoryBackend is a Backend in this process's memory: the same GCRA as
// RedisBackend, on the clock now. It is exact for one replica (tests, a
// single instance, or the local failure mode). It is safe for concurrent
// use.
type MemoryBackend struct {
	now  func() time.Time
	tats *shardedMap[tat]
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemory returns an empty MemoryBackend reading the time from now
// (time.Now when nil).
func NewMemory(now func() time.Time) *MemoryBackend {
	if now == nil {
		now = time.Now
	}
	return &MemoryBackend{now: now, tats: newShardedMap[tat]()}
}

// Take implements Backend. It fails only for invalid limits.
func (m *MemoryBackend) Take(_ context.Context, limits []Limit) (bool, []Result, error) {
	if len(limits) == 0 {
		return true, []Result{}, nil
	}
	var gbuf [smallTake]gcra
	gs, err := gcraParams(limits, gbuf[:])
	if err != nil {
		return false, nil, err
	}
	var tbuf [smallTake]int64
	tats := tbuf[:0]
	now := micros(m.now())
	set := m.tats.lock(limits)
	for _, l := range limits {
		v, _ := m.tats.get(l.Key, now)
		tats = append(tats, int64(v))
	}
	allowed := takeAll(gs, tats, now)
	if allowed {
		for i, l := range limits {
			m.tats.put(l.Key, tat(tats[i]))
		}
	}
	m.tats.unlock(set, now)
	results := make([]Result, len(limits))
	for i, g := range gs {
		results[i] = g.result(tats[i], now)
	}
	return allowed, results, nil
}
