package quotaclient

import (
	"math/rand/v2"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
)

// Retry timing: a failed attempt is followed by a pause of up to
// maxRetryDelay (uniform, as envoy.RLQSStreamRetryPolicy's 0–500 ms);
// an attempt (connection, stream, response headers) gives up after
// attemptTimeout, a report's send after sendTimeout.
const (
	maxRetryDelay  = 500 * time.Millisecond
	attemptTimeout = 2 * time.Second
	sendTimeout    = 5 * time.Second
	// newBucketSpacing is the least time between two new-bucket reports:
	// a burst of new consumers costs a Drain per spacing, not per bucket.
	newBucketSpacing = 5 * time.Millisecond
	// newBucketShare bounds the time new-bucket reports take: each one
	// drains the whole store (a full module table: ~40 ms), so the next
	// waits newBucketShare times as long as the last took (at least
	// newBucketSpacing), and a steady stream of new consumers keeps the
	// goroutine busy about 1/newBucketShare of the time, not always.
	newBucketShare = 10
	// eventBuffer holds every response to one tick's reports (at most two
	// per report message: abandons, then assignments), so the receiver
	// never waits for the loop while it sends them (which, through gRPC
	// flow control, could stall the server and then the loop's send).
	eventBuffer = 2*MaxPendingBuckets/reportChunk + 16
)

// event is what a stream's receiver hands the loop: a response, or the
// error that ended stream gen.
type event struct {
	gen  uint64
	resp *rlqsv3.RateLimitQuotaResponse
	err  error
}

// loop is the state of the Client's goroutine; only it touches loop.
type loop struct {
	c       *Client
	conns   *conns
	next    int // the address to try next
	st      *stream
	gen     uint64
	events  chan event
	pending *pending
	retry   *time.Timer // armed while no stream is up
	// failures counts failed attempts since the last stream opened (only
	// the first is logged as a warning).
	failures int
	// kickTimer, armed when kicked, fires a deferred new-bucket report;
	// kickedAt is when the last one was sent.
	kickTimer *time.Timer
	kickArmed bool
	kickedAt  time.Time
	// spacing is the least time from the last new-bucket report to the
	// next (newBucketSpacing, or newBucketShare times its cost, at most
	// the report interval).
	spacing time.Duration
}

// run is the Client's goroutine: it reports on ticks and NewBucket,
// keeps a stream up and applies what arrives on it, until Close.
func (c *Client) run() {
	defer close(c.done)
	l := &loop{c: c, conns: newConns(), events: make(chan event, eventBuffer), pending: newPending(MaxPendingBuckets),
		retry: time.NewTimer(0), kickTimer: time.NewTimer(time.Hour)}
	l.kickTimer.Stop()
	defer l.conns.close()
	defer l.drop()
	if len(c.addrs) == 0 {
		c.log.Error("rlqs client: no quota server address; nothing is reported")
	}
	interval := time.Duration(c.interval.Load())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-l.retry.C:
			c.safely("connect", l.connect)
		case <-tick.C:
			c.safely("report", func() { l.report(true) })
			if d := time.Duration(c.interval.Load()); d != interval {
				interval = d
				tick.Reset(d)
			}
		case <-c.kick:
			l.newBucket(time.Now())
		case <-l.kickTimer.C:
			l.kickArmed = false
			l.newBucket(time.Now())
		case ev := <-l.events:
			c.safely("response", func() { l.handle(ev) })
		}
	}
}

// newBucket sends a new-bucket report, or defers it to newBucketSpacing
// after the last one.
func (l *loop) newBucket(now time.Time) {
	if wait := max(l.spacing, newBucketSpacing) - now.Sub(l.kickedAt); wait > 0 {
		if !l.kickArmed {
			l.kickTimer.Reset(wait)
			l.kickArmed = true
		}
		return
	}
	l.kickedAt = now
	l.c.safely("new bucket report", func() { l.report(false) })
	// At most a report interval: a slow send (not CPU) defers new buckets
	// to the tick's report at worst.
	l.spacing = min(newBucketShare*time.Since(now), time.Duration(l.c.interval.Load()))
}

// report drains the store into pending and, with a stream up, sends
// every pending bucket (all) or only those never reported (a new bucket's
// report).
func (l *loop) report(all bool) {
	l.pending.merge(l.c.store.Drain(), time.Now(), l.c.log)
	if l.st == nil {
		return
	}
	if err := l.send(all); err != nil {
		l.c.log.Warn("rlqs client: report not sent; stream reopened, counts kept", "address", l.st.addr, "err", err)
		l.down()
	}
}

// send sends pending's buckets (all, or the new ones) on the stream, in
// reports of at most reportChunk buckets, marking each report's buckets
// delivered once it is sent.
func (l *loop) send(all bool) error {
	now := time.Now()
	for _, ids := range chunks(l.pending.ids(all), reportChunk) {
		r := l.pending.build(l.c.domain, ids, now)
		if err := l.st.send(r); err != nil {
			return err
		}
		l.pending.delivered(ids, now)
	}
	return nil
}

// handle applies a response of the current stream, or notes its end.
func (l *loop) handle(ev event) {
	if l.st == nil || ev.gen != l.gen {
		return // a stream already dropped
	}
	if ev.err != nil {
		l.c.log.Warn("rlqs client: stream ended; reopening", "address", l.st.addr, "err", ev.err)
		l.down()
		return
	}
	l.apply(ev.resp)
}

// connect tries the next address. Up, it reports every pending bucket at
// once (the server learns them, and answers, without waiting a tick);
// failed (or panicking), the retry timer fires again after the retry
// pause.
func (l *loop) connect() {
	if len(l.c.addrs) == 0 {
		return
	}
	addr := l.c.addrs[l.next%len(l.c.addrs)]
	l.retry.Reset(rand.N(maxRetryDelay)) // armed first: a panic below still retries
	st, err := l.open(addr)
	if err != nil {
		l.next = (l.next + 1) % len(l.c.addrs)
		if l.failures++; l.failures == 1 {
			l.c.log.Warn("rlqs client: quota server not reached; retrying every 0-500 ms, address by address (further failures logged at debug)",
				"address", addr, "err", err)
		} else {
			l.debug("rlqs client: quota server not reached", "address", addr, "err", err, "failures", l.failures)
		}
		return
	}
	l.retry.Stop()
	l.st = st
	l.c.log.Info("rlqs client: stream open", "address", addr, "failed_attempts", l.failures)
	l.failures = 0
	l.report(true)
}

// open opens stream l.gen+1 to addr and starts its receiver.
func (l *loop) open(addr string) (*stream, error) {
	conn, err := l.conns.get(addr)
	if err != nil {
		return nil, err
	}
	l.gen++
	return openStream(l.c.ctx, conn, addr, l.c.id, l.gen, l.events, l.c.safely)
}

// down drops the stream and schedules a new attempt on the address that
// served it, after the retry pause (a server that ends every stream at
// once is not hammered).
func (l *loop) down() {
	l.drop()
	l.retry.Reset(rand.N(maxRetryDelay))
}

// drop ends the current stream, if any.
func (l *loop) drop() {
	if l.st != nil {
		l.st.close()
		l.st = nil
	}
}
