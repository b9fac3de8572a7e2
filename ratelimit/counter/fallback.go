package counter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// DefaultBackoff is how long a Fallback skips its primary after an error.
const DefaultBackoff = 500 * time.Millisecond

// ErrPrimaryDown is the error a Fallback reports for a Take it did not
// even try on the primary, because the primary failed less than a backoff
// ago.
var ErrPrimaryDown = errors.New("counter: primary backend down (retrying after a backoff)")

// FailureHook is told about every Take the failure mode decided: err is
// the primary's error, or ErrPrimaryDown while the primary is skipped. It
// must be safe for concurrent use and quick (metrics, a rate-limited log).
type FailureHook func(err error)

// FallbackOption configures a Fallback.
type FallbackOption func(*Fallback)

// WithBackoff sets how long the primary is skipped after an error
// (default DefaultBackoff).
func WithBackoff(d time.Duration) FallbackOption {
	return func(f *Fallback) { f.backoff = d }
}

// WithClock sets the clock of the backoff (default time.Now).
func WithClock(now func() time.Time) FallbackOption {
	return func(f *Fallback) { f.now = now }
}

// failure modes, in an atomic.
const (
	modeOpen int32 = iota + 1
	modeClosed
	modeLocal
)

// Fallback applies a failure mode (ir.FailOpen, ir.FailClosed or
// ir.FailLocal) when its primary backend cannot decide:
//
//   - open: the request is admitted, with zero Results (they say nothing);
//   - closed: Take returns the error (the service denies the request);
//   - local: the local backend (a MemoryBackend) decides, per replica.
//
// It recovers by itself: every Take tries the primary, except for a
// backoff after an error, so that an outage does not pile up timeouts.
// When the backoff is over, one Take probes the primary while the others
// keep failing over; its success ends the outage. Invalid limits and
// Takes whose own context ended are not the primary's failures: their
// errors are returned as they are. It is safe for concurrent use.
type Fallback struct {
	primary, local Backend
	hook           FailureHook
	backoff        time.Duration
	now            func() time.Time
	mode           atomic.Int32
	skipUntil      atomic.Int64 // unix ns; 0 while the primary is healthy
}

var _ Backend = (*Fallback)(nil)

// NewFallback returns a Fallback on primary in mode. local is required in
// ir.FailLocal mode only; hook may be nil.
func NewFallback(primary, local Backend, mode string, hook FailureHook, opts ...FallbackOption) (*Fallback, error) {
	if primary == nil {
		return nil, errors.New("counter: fallback without a primary backend")
	}
	f := &Fallback{primary: primary, local: local, hook: hook, backoff: DefaultBackoff, now: time.Now}
	for _, o := range opts {
		o(f)
	}
	if err := f.SetMode(mode); err != nil {
		return nil, err
	}
	return f, nil
}

// SetMode switches the failure mode, e.g. when a new policy arrives.
func (f *Fallback) SetMode(mode string) error {
	var m int32
	switch mode {
	case ir.FailOpen:
		m = modeOpen
	case ir.FailClosed:
		m = modeClosed
	case ir.FailLocal:
		if f.local == nil {
			return errors.New("counter: failure mode local without a local backend")
		}
		m = modeLocal
	default:
		return fmt.Errorf("counter: unknown failure mode %q", mode)
	}
	f.mode.Store(m)
	return nil
}

// Take implements Backend.
func (f *Fallback) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	cause := ErrPrimaryDown
	if f.tryPrimary() {
		allowed, results, err := f.primary.Take(ctx, limits)
		switch {
		case err == nil:
			f.skipUntil.Store(0)
			return allowed, results, nil
		case errors.Is(err, ErrInvalidLimit) || ctx.Err() != nil:
			return false, nil, err
		}
		f.skipUntil.Store(f.now().Add(f.backoff).UnixNano())
		cause = err
	}
	if f.hook != nil {
		f.hook(cause)
	}
	return f.failover(ctx, limits, cause)
}

// tryPrimary reports whether this Take asks the primary: always while it
// is healthy, and once per backoff (the probe) while it is down.
func (f *Fallback) tryPrimary() bool {
	until := f.skipUntil.Load()
	if until == 0 {
		return true
	}
	now := f.now().UnixNano()
	if now < until {
		return false
	}
	return f.skipUntil.CompareAndSwap(until, now+int64(f.backoff))
}

// failover decides a Take the primary did not decide, because of cause.
func (f *Fallback) failover(ctx context.Context, limits []Limit, cause error) (bool, []Result, error) {
	switch f.mode.Load() {
	case modeOpen:
		return true, make([]Result, len(limits)), nil
	case modeLocal:
		allowed, results, err := f.local.Take(ctx, limits)
		if err != nil {
			return false, nil, fmt.Errorf("counter: local fallback: %w (primary: %w)", err, cause)
		}
		return allowed, results, nil
	}
	return false, nil, fmt.Errorf("counter: failure mode closed: %w", cause)
}
