package apikey

import (
	"context"
	"errors"
	"net"
	"time"
)

// ErrUnavailable wraps the errors of a Lookup that Redis did not answer in
// time, or that the circuit breaker refused while Redis is down: the
// caller answers "key store unavailable" (503), never a verdict on the key.
var ErrUnavailable = errors.New("apikey: key store unavailable")

// Margins kept from a Lookup's deadline for the answer's way back (gRPC to
// Envoy): a quarter of the time left, at least minLookupMargin.
const minLookupMargin = 10 * time.Millisecond

// lookupContext returns the context of one Redis round trip of a Lookup:
// ctx's deadline minus a margin, so that the caller (Envoy's ext_authz
// filter, whose timeout travels as the gRPC deadline) gets the store's
// own answer before it gives up; fallback when ctx has no deadline. ok is
// false when no time is left.
func lookupContext(ctx context.Context, fallback time.Duration) (context.Context, context.CancelFunc, bool) {
	d, has := ctx.Deadline()
	if !has {
		c, cancel := context.WithTimeout(ctx, fallback)
		return c, cancel, true
	}
	left := time.Until(d)
	budget := left - max(left/4, minLookupMargin)
	if budget <= 0 {
		return ctx, func() {}, false
	}
	c, cancel := context.WithTimeout(ctx, budget)
	return c, cancel, true
}

// refused reports a connection that could not be made (the server is not
// listening): conclusive, the breaker opens at once.
func refused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
