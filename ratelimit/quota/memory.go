package quota

import (
	"context"
	"sync"
	"time"

	"github.com/tollgate/tollgate/ratelimit/counter"
)

// MemoryAccount is an Account in one process: for tests, one replica, and
// the "local" failure mode. It is safe for concurrent use. Its memory is
// bounded by the keys still in use: a key whose TAT has passed (a full
// bucket, the same as no entry) and whose participants' holds have all
// expired is dropped by a sweep that runs whenever the number of keys has
// doubled since the last one (amortised O(1) per settlement), so client
// addresses seen once do not accumulate.
type MemoryAccount struct {
	now   func() time.Time
	mu    sync.Mutex
	tats  map[string]int64
	parts map[string]map[string]participant
	// swept is the number of keys the last sweep left.
	swept int
}

// minSweep is the number of keys below which the account never sweeps.
const minSweep = 1024

var _ Account = (*MemoryAccount)(nil)

// NewMemoryAccount returns an empty MemoryAccount on the clock now.
func NewMemoryAccount(now func() time.Time) *MemoryAccount {
	return &MemoryAccount{now: now, tats: map[string]int64{}, parts: map[string]map[string]participant{}}
}

// Settle implements Account with the same math as the Redis script.
func (m *MemoryAccount) Settle(_ context.Context, s Settlement) ([]KeyState, error) {
	gs, err := params(s.Limits)
	if err != nil {
		return nil, err
	}
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]KeyState, len(s.Limits))
	for i, l := range s.Limits {
		tat, rem := charge(m.tats[l.Key], now, gs[i].interval, gs[i].tolerance, s.Used)
		if !s.Release {
			m.tats[l.Key] = tat
		}
		parts := m.parts[l.Key]
		if parts == nil {
			parts = map[string]participant{}
			m.parts[l.Key] = parts
		}
		for id, p := range parts {
			if p.expires <= now || s.Release && id == s.Participant {
				delete(parts, id)
			}
		}
		if s.Release {
			out[i] = KeyState{Remaining: rem}
			continue
		}
		me, known := parts[s.Participant]
		held := me.holding(now, gs[i].interval) // before its share changes
		me.demand, me.expires = newcomerDemand(parts, known, s.Demand), now+s.Hold.Microseconds()
		parts[s.Participant] = me
		share := grant(parts, s.Participant)
		others := 0.0
		for id, p := range parts {
			if id != s.Participant {
				others += p.holding(now, gs[i].interval)
			}
		}
		me = parts[s.Participant]
		me.grant, me.at = grantOf(share, rem, others), now
		if s.Keep && known {
			me.grant = held
		}
		parts[s.Participant] = me
		out[i] = KeyState{Remaining: rem, Share: share, Grant: me.grant}
	}
	if n := max(len(m.tats), len(m.parts)); n >= max(minSweep, 2*m.swept) {
		m.sweep(now)
	}
	return out, nil
}

// sweep drops (m.mu held) the participants whose hold has expired and the
// keys left with none whose TAT is not after now; it records what is left.
func (m *MemoryAccount) sweep(now int64) {
	for k, parts := range m.parts {
		for id, p := range parts {
			if p.expires <= now {
				delete(parts, id)
			}
		}
		if len(parts) == 0 {
			delete(m.parts, k)
		}
	}
	for k, tat := range m.tats {
		if _, live := m.parts[k]; !live && tat <= now {
			delete(m.tats, k)
		}
	}
	m.swept = max(len(m.tats), len(m.parts))
}

// keys is the number of keys the account holds (for tests).
func (m *MemoryAccount) keys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(len(m.tats), len(m.parts))
}

// gcraParams are one limit's interval T and tolerance τ in µs.
type gcraParams struct{ interval, tolerance int64 }

// params converts limits with the counter package's rules (T = Per /
// Requests, at least 1 µs; τ = T × (max(Burst, Requests) − 1)).
func params(limits []counter.Limit) ([]gcraParams, error) {
	out := make([]gcraParams, len(limits))
	for i, l := range limits {
		t, tau, err := counter.Params(l)
		if err != nil {
			return nil, err
		}
		out[i] = gcraParams{interval: t, tolerance: tau}
	}
	return out, nil
}

// newcomerDemand is a participant's demand for the share: its own, or for
// one not among parts (new, or its hold expired) that meets others, at
// least their mean (a first report says one request; see settle.lua).
func newcomerDemand(parts map[string]participant, known bool, demand float64) float64 {
	if known || len(parts) == 0 {
		return demand
	}
	sum := 0.0
	for _, p := range parts {
		sum += p.demand
	}
	return max(demand, sum/float64(len(parts)))
}
