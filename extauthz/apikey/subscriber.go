package apikey

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// noConfirmation marks a subscription that has not proved itself live.
const noConfirmation = math.MinInt64

// Reconnection backoff of the subscription after an error.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// subscriber applies the revocations announced on RevokedChannel to the
// cache, and tells the store whether the cache can be trusted.
//
// Pub/sub is fire-and-forget: a message published while the subscription
// is down is lost. So the subscriber pings through the subscription every
// interval, with the ping's send time as payload. Redis answers in order,
// so when the pong of a ping sent at t arrives, every revocation published
// before t has already been applied. The cache is trusted only while the
// newest such t is at most maxStale old: a revocation takes effect within
// maxStale even when its message is lost, because a silent or broken
// subscription stops vouching for the cache. On any error, and on every
// (re)subscription, the cache is flushed.
type subscriber struct {
	ps       *redis.PubSub
	cache    *cache
	log      *slog.Logger
	interval time.Duration
	maxStale time.Duration
	origin   time.Time // monotonic origin of the offsets below

	// confirmed is the send time (offset from origin) of the newest ping
	// answered on a live subscription, or noConfirmation.
	confirmed atomic.Int64

	// State of the run goroutine.
	lastPing time.Duration
	down     bool
	done     chan struct{}
}

func startSubscriber(ctx context.Context, client redis.UniversalClient, c *cache,
	log *slog.Logger, maxStale time.Duration,
) *subscriber {
	s := &subscriber{
		ps:       client.Subscribe(ctx, RevokedChannel),
		cache:    c,
		log:      log,
		interval: maxStale / 4,
		maxStale: maxStale,
		origin:   time.Now(),
		done:     make(chan struct{}),
	}
	s.confirmed.Store(noConfirmation)
	s.lastPing = -s.interval // ping at once
	go s.run(ctx)
	return s
}

// fresh reports whether every revocation published more than maxStale
// ago has been applied to the cache.
func (s *subscriber) fresh() bool {
	c := s.confirmed.Load()
	return c != noConfirmation && int64(time.Since(s.origin))-c <= int64(s.maxStale)
}

// close stops the subscriber; ctx must be cancelled first.
func (s *subscriber) close() {
	_ = s.ps.Close() // only fails when already closed
	<-s.done
	s.confirmed.Store(noConfirmation)
}

func (s *subscriber) run(ctx context.Context) {
	defer close(s.done)
	failures := 0
	for ctx.Err() == nil {
		now := time.Since(s.origin)
		if now-s.lastPing >= s.interval {
			s.lastPing = now
			if err := s.ps.Ping(ctx, strconv.FormatInt(int64(now), 10)); err != nil {
				failures = s.fail(ctx, err, failures)
				continue
			}
		}
		wait := max(s.interval-(time.Since(s.origin)-s.lastPing), time.Millisecond)
		msg, err := s.ps.ReceiveTimeout(ctx, wait)
		switch {
		case err == nil:
			if s.handle(msg) {
				failures = 0
			}
		case isTimeout(err):
		default:
			failures = s.fail(ctx, err, failures)
		}
	}
}

// handle applies one message; it reports a (re)subscription.
func (s *subscriber) handle(msg any) bool {
	switch m := msg.(type) {
	case *redis.Message:
		if m.Channel == RevokedChannel {
			s.cache.invalidate(m.Payload)
		}
	case *redis.Pong:
		if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
			s.confirmed.Store(sent)
		}
	case *redis.Subscription:
		if m.Kind != "subscribe" {
			return false
		}
		// Messages may have been missed before this (re)subscription.
		s.confirmed.Store(noConfirmation)
		s.cache.flush()
		s.lastPing = -s.interval
		if s.down {
			s.down = false
			s.log.Info("apikey: revocation channel restored; cache flushed")
		}
		return true
	}
	return false
}

// fail distrusts and flushes the cache, and waits before the next
// attempt. It returns the new count of consecutive failures.
func (s *subscriber) fail(ctx context.Context, err error, failures int) int {
	s.confirmed.Store(noConfirmation)
	s.cache.flush()
	if ctx.Err() != nil {
		return failures
	}
	if !s.down {
		s.down = true
		s.log.Warn("apikey: revocation channel lost; lookups bypass the cache until it is back", "err", err)
	}
	backoff := min(minBackoff<<min(failures, 10), maxBackoff)
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return failures + 1
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
