package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultTimeout bounds a wait whose context has no deadline.
const DefaultTimeout = 30 * time.Second

const (
	minPoll = 20 * time.Millisecond
	maxPoll = 50 * time.Millisecond
)

// permanentError makes WaitFor stop at once.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that WaitFor returns it at once instead of
// polling again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// WaitFor calls cond every 20-50ms until it reports true, returns an error
// wrapped by Permanent, or the deadline passes: that of ctx, or
// DefaultTimeout from now when ctx has none. Other errors from cond count as
// "not yet"; the last one is part of the error returned on timeout.
func WaitFor(ctx context.Context, cond func() (bool, error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	start := time.Now()
	interval := minPoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("condition not met after %v: %w (last error: %w)",
					time.Since(start).Round(time.Millisecond), ctx.Err(), lastErr)
			}
			return fmt.Errorf("condition not met after %v: %w",
				time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-timer.C:
		}
		ok, err := cond()
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if ok && err == nil {
			return nil
		}
		lastErr = err
		timer.Reset(interval)
		interval = min(interval+10*time.Millisecond, maxPoll)
	}
}

// WaitPort waits until a TCP connection to addr (host:port) succeeds.
func WaitPort(ctx context.Context, addr string) error {
	var d net.Dialer
	err := WaitFor(ctx, func() (bool, error) {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		return true, conn.Close()
	})
	if err != nil {
		return fmt.Errorf("wait for %s to accept connections: %w", addr, err)
	}
	return nil
}
