// Package breaker is a circuit breaker for a remote dependency on a
// request path (Redis behind the API-key store and the rate-limit
// counters), with the outage logging that goes with it.
//
// Contract: while closed, every call goes to the dependency; Threshold
// consecutive failures (or one failure Fatal says is conclusive, such as a
// refused connection) open it; with CountOverlapsOnce, failures of calls
// that were in flight together count once. While open, calls fail fast with ErrOpen
// for OpenFor; then exactly one call, the probe, goes to the dependency
// (half-open) while the others keep failing fast. The probe's success
// closes the breaker, its failure opens it for another OpenFor.
//
// Logging is per outage, never per call: one WARN when the breaker opens
// (with the error), one WARN summary per SummaryEvery while it stays open
// (calls refused and probes failed since the last line), one INFO when it
// closes (outage length, calls refused). A Breaker is safe for concurrent
// use; the closed path costs three atomic loads.
package breaker

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOpen is returned by Allow while the breaker is open: the dependency
// failed recently and is not asked.
var ErrOpen = errors.New("circuit open: the dependency failed recently")

// Defaults of Options.
const (
	DefaultThreshold    = 3
	DefaultOpenFor      = 500 * time.Millisecond
	DefaultSummaryEvery = 10 * time.Second
)

// Options configure a Breaker. The zero value is usable.
type Options struct {
	// Name of the dependency in log lines, e.g. "API key store".
	Name string
	// Threshold is the number of consecutive failures that open the
	// breaker (default DefaultThreshold).
	Threshold int
	// OpenFor is how long calls fail fast before a probe (default
	// DefaultOpenFor).
	OpenFor time.Duration
	// SummaryEvery is the interval of the "still unavailable" summary
	// (default DefaultSummaryEvery).
	SummaryEvery time.Duration
	// CountOverlapsOnce counts a failure toward Threshold only if its call
	// started after the last counted failure: one stall (a GC pause, a
	// CPU-starved process, one slow reply) that times out every call in
	// flight at once is one failure, not an outage. A dependency that keeps
	// failing still opens the breaker after Threshold calls, each started
	// after the previous one failed (Threshold timeouts in a row).
	CountOverlapsOnce bool
	// Fatal reports failures that open the breaker at once (e.g. a refused
	// connection); nil: none.
	Fatal func(error) bool
	// Logger (default slog.Default()); Now (default time.Now).
	Logger *slog.Logger
	Now    func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.OpenFor <= 0 {
		o.OpenFor = DefaultOpenFor
	}
	if o.SummaryEvery <= 0 {
		o.SummaryEvery = DefaultSummaryEvery
	}
	if o.Fatal == nil {
		o.Fatal = func(error) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Breaker states.
const (
	closed int32 = iota
	open
	halfOpen // open, with the probe in flight
)

// Breaker is a circuit breaker; see the package documentation.
type Breaker struct {
	opts     Options
	state    atomic.Int32
	failures atomic.Int32 // consecutive failures while closed
	gen      atomic.Int64 // failures counted so far (CountOverlapsOnce)
	refused  atomic.Int64 // calls refused since the last log line

	mu          sync.Mutex // guards the transitions and the fields below
	probeAt     time.Time  // when open: the next probe's time
	since       time.Time  // start of the outage
	nextSummary time.Time
	probesLost  int   // probes failed since the last log line
	refusedAll  int64 // calls refused in the whole outage
}

// New returns a closed Breaker.
func New(opts Options) *Breaker {
	return &Breaker{opts: opts.withDefaults()}
}

// Ticket is a permission to call the dependency; its outcome must be
// reported with exactly one of Success, Failure or Ignore.
type Ticket struct {
	b     *Breaker
	probe bool
	gen   int64 // b.gen when the call started
}

// Allow returns a ticket to call the dependency, or ErrOpen.
func (b *Breaker) Allow() (Ticket, error) {
	if b.state.Load() == closed {
		return Ticket{b: b, gen: b.gen.Load()}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case closed:
		return Ticket{b: b, gen: b.gen.Load()}, nil
	case open:
		if now := b.opts.Now(); !now.Before(b.probeAt) {
			b.state.Store(halfOpen)
			return Ticket{b: b, probe: true}, nil
		}
	}
	b.refused.Add(1)
	b.summaryLocked()
	return Ticket{}, ErrOpen
}

// Open reports whether calls are failing fast.
func (b *Breaker) Open() bool { return b.state.Load() != closed }

// Success reports that the dependency answered.
func (t Ticket) Success() {
	b := t.b
	if b.state.Load() == closed && !t.probe {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures.Store(0)
	if b.state.Load() == closed {
		return
	}
	refused := b.refusedAll + b.refused.Swap(0)
	b.state.Store(closed)
	b.refusedAll, b.probesLost = 0, 0
	b.opts.Logger.Info(b.opts.Name+" available again", "outage", b.opts.Now().Sub(b.since).Round(time.Millisecond),
		"refused", refused)
}

// Failure reports that the dependency failed (or was too slow) with err.
func (t Ticket) Failure(err error) {
	b := t.b
	if !t.probe && b.state.Load() != closed {
		return // the breaker opened meanwhile
	}
	fatal := b.opts.Fatal(err)
	if !t.probe && !fatal && b.opts.CountOverlapsOnce && !b.gen.CompareAndSwap(t.gen, t.gen+1) {
		return // in flight with a failure already counted: the same stall
	}
	if !t.probe && b.failures.Add(1) < int32(b.opts.Threshold) && !fatal {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	switch st := b.state.Load(); {
	case st == closed:
		b.failures.Store(0)
		b.since, b.nextSummary = now, now.Add(b.opts.SummaryEvery)
		b.opts.Logger.Warn(b.opts.Name+" unavailable; failing fast, probing every "+b.opts.OpenFor.String(), "err", err)
	case st == halfOpen && t.probe:
		b.probesLost++
		b.summaryLockedAt(now, err)
	default:
		return
	}
	b.state.Store(open)
	b.probeAt = now.Add(b.opts.OpenFor)
}

// Ignore reports an outcome that says nothing about the dependency (the
// caller gave up first). A probe is handed to the next call.
func (t Ticket) Ignore() {
	if !t.probe {
		return
	}
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == halfOpen {
		b.state.Store(open)
		b.probeAt = b.opts.Now()
	}
}

func (b *Breaker) summaryLocked() { b.summaryLockedAt(b.opts.Now(), nil) }

// summaryLockedAt writes the "still unavailable" line when it is due.
func (b *Breaker) summaryLockedAt(now time.Time, err error) {
	if now.Before(b.nextSummary) {
		return
	}
	refused := b.refused.Swap(0)
	b.refusedAll += refused
	b.nextSummary = now.Add(b.opts.SummaryEvery)
	attrs := []any{"for", now.Sub(b.since).Round(time.Millisecond), "refused", refused, "probesFailed", b.probesLost}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	b.probesLost = 0
	b.opts.Logger.Warn(b.opts.Name+" still unavailable", attrs...)
}
