package counter

import (
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// ErrInvalidLimit wraps the error of a Take whose limits cannot be
// enforced (no requests, a window under a microsecond, a huge bucket). It
// is a configuration error, not a backend failure.
var ErrInvalidLimit = errors.New("counter: invalid limit")

// gcra is one limit in the units both backends compute in: microseconds.
type gcra struct {
	interval  int64 // T = Per / Requests, at least 1 µs
	tolerance int64 // τ = T × (max(Burst, Requests) − 1)
}

// newGCRA checks l and returns its parameters. The bounds are
// ir.CheckLimit's, the very function the policy validator calls, so a
// validated policy never has a limit the counters refuse.
func newGCRA(l Limit) (gcra, error) {
	g, err := ir.CheckLimit(l.Requests, l.Per, l.Burst)
	if err != nil {
		return gcra{}, fmt.Errorf("%w: %q: %w", ErrInvalidLimit, l.Key, err)
	}
	return gcra{interval: g.Interval, tolerance: g.Tolerance}, nil
}

// gcraParams converts limits into buf (reused when large enough).
func gcraParams(limits []Limit, buf []gcra) ([]gcra, error) {
	gs := buf[:0]
	for _, l := range limits {
		g, err := newGCRA(l)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// admits reports whether a request at now conforms to a limit whose
// stored theoretical arrival time is tat (0 when there is none): with
// TAT' = max(TAT, now) + T, TAT' − now ≤ τ + T, i.e. max(TAT, now) − now ≤ τ.
func (g gcra) admits(tat, now int64) bool {
	return max(tat, now)-now <= g.tolerance
}

// result describes a limit whose TAT is tat at now, after the Take:
//
//	d          = max(TAT, now) − now         (ResetAfter: the bucket is full again)
//	Remaining  = floor((τ + T − d) / T), ≥ 0 (requests admitted right now)
//	RetryAfter = max(0, d − τ)               (until admits holds again)
func (g gcra) result(tat, now int64) Result {
	d := max(tat, now) - now
	return Result{
		Remaining:  uint64(max(0, (g.tolerance+g.interval-d)/g.interval)),
		ResetAfter: time.Duration(d) * time.Microsecond,
		RetryAfter: time.Duration(max(0, d-g.tolerance)) * time.Microsecond,
	}
}

// takeAll is one request against every limit, all or nothing: tats holds
// the stored TATs (0 when absent) and, when every limit admits the
// request, receives the new ones, TAT' = max(TAT, now) + T. All TATs are
// read before any is written, exactly as the Lua script does.
func takeAll(gs []gcra, tats []int64, now int64) bool {
	for i, g := range gs {
		if !g.admits(tats[i], now) {
			return false
		}
	}
	for i, g := range gs {
		tats[i] = max(tats[i], now) + g.interval
	}
	return true
}

// micros converts t to the backends' clock, microseconds since the epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }
