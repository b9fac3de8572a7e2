// Package quotaclient is the Envoy module's client of Tollgate's quota
// server (package ratelimit/quota): the RLQS protocol
// (envoy.service.rate_limit_quota.v3) as Envoy 1.40's rate_limit_quota
// filter speaks it, so the server serves the module and Envoy's filter
// alike, unchanged. The module enforces the limits itself (its buckets
// live in C, behind Store); this package reports their usage and applies
// the server's answers.
//
// # Protocol, as the server expects it (ratelimit/quota doc.go)
//
//   - One bidirectional stream per Client (grpc-go, plaintext), opened to
//     the first address of Quota.Address that answers; a failed attempt
//     moves to the next address after 0–500 ms (jittered, as
//     envoy.RLQSStreamRetryPolicy), a broken stream is reopened at once on
//     the address that served it. A stream is usable once the server's
//     response headers arrive (the quota server sends them at once).
//   - Every ReportInterval, one report of every bucket Store.Drain
//     returns, idle ones included; after NewBucket, at once (at least
//     5 ms, and ten times the last one's cost, after the previous one: a
//     report drains the whole store), a report of the buckets never
//     reported before (their time_elapsed 0: the server builds their
//     first bound full), the others' counts waiting for the next tick,
//     as Envoy reports a new bucket alone.
//   - time_elapsed is per bucket, whole seconds since its last delivered
//     report (rounded to the nearest second, at least 1 s for a bucket
//     reported before: 0 tells the server the bucket was just built, and
//     the server counts a bucket idle only when the report covers time).
//   - Answers are applied in the order received (Store.Assign,
//     Store.Abandon): the server sends ALLOW_ALL then a token bucket for
//     one bucket in one response, meaning "a bucket holding exactly its
//     grant".
//
// # One participant across streams
//
// Every stream a Client opens carries its id (random, fixed for the
// Client's life; a Registry's clients, the module's, share one per
// process) in the metadata ir.RateLimitQuotaClientHeader, so the
// server counts its buckets as the same participants of the account on
// every stream and replica: a restarted or failed-over server gives a
// reconnected module the share its usage earns, where a new stream was a
// newcomer's, held to its floor share while the ended stream's share was
// held (ratelimit/quota participant).
//
// # Better than Envoy: usage survives an outage
//
// Envoy 1.40 drops the usage of reports it could not send. The Client
// keeps each bucket's undelivered counts (pending) and adds them to its
// next report, so a restarted or failed-over server charges what was
// admitted meanwhile (late; settle.lua bounds how far back it counts).
// Memory is bounded: at most MaxPendingBuckets buckets are kept, more
// than the Store holds live (every live bucket is reported); beyond it,
// a new live bucket takes the place of a gone bucket's undelivered
// counts, and what cannot be kept is dropped (logged with its number).
// Counts a send accepted are delivered as far as the Client knows: a
// report gRPC took but the connection lost before the server read it is
// lost, as with Envoy (at most one report per broken stream).
//
// # Threads
//
// Every Store method is called from the Client's one goroutine, never
// concurrently. NewBucket and Close may be called from any goroutine;
// NewBucket never blocks. The goroutine recovers and logs panics (its
// own and the Store's) and carries on. Nothing here logs a credential:
// the stream carries none, and bucket ids are logged only at debug level.
package quotaclient

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// BucketID names one bucket: its RLQS bucket id's ir.BucketKeyBucket
// ("bucket") and ir.BucketKeyConsumer ("consumer") values.
type BucketID struct{ Bucket, Consumer string }

// Usage is one bucket's requests since the previous Store.Drain.
type Usage struct {
	ID              BucketID
	Allowed, Denied uint64
}

// Kind is an assignment's strategy.
type Kind int

// Assignment strategies: the server's blanket rules and token bucket.
const (
	AllowAll Kind = iota
	DenyAll
	TokenBucket
)

// String names k as the RLQS strategy does.
func (k Kind) String() string {
	switch k {
	case AllowAll:
		return "ALLOW_ALL"
	case DenyAll:
		return "DENY_ALL"
	case TokenBucket:
		return "TOKEN_BUCKET"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Assignment is one quota assignment of the server. MaxTokens,
// TokensPerFill and FillInterval are set for TokenBucket only. TTL is the
// assignment's time to live as sent (0 when the server sent none).
type Assignment struct {
	ID                       BucketID
	Kind                     Kind
	MaxTokens, TokensPerFill uint64
	FillInterval, TTL        time.Duration
}

// Store is the module's bucket table, as the Client sees it. Its methods
// are called from the Client's goroutine only.
type Store interface {
	// Drain returns every live bucket's counts since the previous Drain
	// and resets them (idle buckets included, with zeros).
	Drain() []Usage
	// Assign applies one assignment; assignments come in the order the
	// server sent them.
	Assign(a Assignment)
	// Abandon drops the bucket (the server's abandon action).
	Abandon(id BucketID)
}

// Client reports a Store's usage to the quota server over one RLQS stream
// and applies the answers. Create it with New (or Registry.Get); it runs
// until Close.
type Client struct {
	// id names the client to the server on every stream it opens
	// (ir.RateLimitQuotaClientHeader): random, fixed for the Client's life
	// (a Registry's clients share the Registry's).
	id       string
	addrs    []string
	domain   string
	store    Store
	log      *slog.Logger
	interval atomic.Int64 // the report interval, ns
	kick     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

// New starts a client of cfg's quota server for store: it connects at
// once and reports every cfg.ReportInterval (0: DefaultReportInterval).
// An empty Domain is ir.RateLimitQuotaDomain. log nil is slog.Default().
// cfg.FailClosed is not the client's business: what an expired
// assignment means is the Store's, which gets each assignment's TTL.
// The module takes its clients from a Registry instead (and never Closes
// one it got there: it Releases it).
func New(cfg envoymod.Quota, store Store, log *slog.Logger) *Client {
	return start(cfg, store, log, newClientID())
}

// start is New with the client id id (Registry: one per process).
func start(cfg envoymod.Quota, store Store, log *slog.Logger, id string) *Client {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{id: id, addrs: addresses(cfg.Address), domain: domain(cfg.Domain), store: store,
		log: log.With("component", "rlqs-client"), kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	c.setInterval(cfg.ReportInterval)
	go c.run()
	return c
}

// newClientID returns a random client id: 32 hex digits (128 bits), never
// the same for two clients.
func newClientID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand.Read panics instead)
	return hex.EncodeToString(b[:])
}

// NewBucket tells the client a bucket was created: it reports the new
// buckets at once. It never blocks; calls arriving while a report is
// pending coalesce into it.
func (c *Client) NewBucket() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Close stops the client and waits for its goroutine: the stream ends
// and nothing more is reported. Counts not delivered are lost. Close is
// idempotent.
func (c *Client) Close() {
	c.once.Do(c.cancel)
	<-c.done
}

// setInterval sets the report interval (0: the default), taking effect
// at the next tick.
func (c *Client) setInterval(d time.Duration) {
	if d <= 0 {
		d = envoymod.DefaultReportInterval
	}
	c.interval.Store(int64(d))
}

// addresses splits a comma-separated address list, dropping blanks.
func addresses(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// domain is d, or Tollgate's RLQS domain when empty.
func domain(d string) string {
	if d == "" {
		return ir.RateLimitQuotaDomain
	}
	return d
}

// safely runs f, logging a panic instead of propagating it: the Client's
// goroutine must survive its own bugs and the Store's.
func (c *Client) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("rlqs client: panic recovered", "in", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	f()
}
