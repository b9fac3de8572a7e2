package counter

import "time"

// gcra is one limit's parameters in microseconds: the emission interval T
// (Per/Requests) and the burst tolerance tau (T × (Burst − 1)).
type gcra struct{ t, tau int64 }

func params(l Limit) gcra {
	burst := l.Burst
	if burst < l.Requests {
		burst = l.Requests
	}
	t := l.Per.Microseconds() / int64(max(l.Requests, 1))
	t = max(t, 1)
	return gcra{t: t, tau: t * int64(max(burst, 1)-1)}
}

// admits reports whether a limit whose theoretical arrival time is tat
// admits a request at now: the request conforms when max(tat, now) − now ≤ tau.
func (g gcra) admits(tat, now int64) bool { return max(tat, now)-now <= g.tau }

// result is the limit's state at now given tat (before this request) and
// whether the request was charged.
func (g gcra) result(tat, now int64, charged bool) Result {
	tat = max(tat, now)
	if charged {
		next := tat + g.t
		return Result{Remaining: uint64((now + g.tau - tat) / g.t), ResetAfter: us(next - now)}
	}
	if tat-now > g.tau {
		return Result{ResetAfter: us(tat - now), RetryAfter: us(tat - now - g.tau)}
	}
	// Conforming, but another limit of the request refused it.
	return Result{Remaining: uint64((now+g.tau-tat)/g.t) + 1, ResetAfter: us(tat - now)}
}

func us(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
