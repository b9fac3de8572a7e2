package counter

import (
	"context"
	_ "embed" // the Lua script
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	DefaultTimeout = 50 * time.Millisecond
	DefaultPrefix  = "tollgate:rl:"
)

//go:embed script.lua
var scriptSource string

// RedisOptions configure a RedisBackend. The zero value is usable.
type RedisOptions struct {
	// Timeout bounds one Take, the script's round trip included (default
	// DefaultTimeout). The client must have ContextTimeoutEnabled for a
	// hung server to be cut off at Timeout rather than its ReadTimeout.
	Timeout time.Duration
	// Prefix of every key (default DefaultPrefix). It must not contain
	// '{', so that the limit keys' hash tags decide the slot.
	Prefix string
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (o RedisOptions) withDefaults() RedisOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RedisBackend is a Backend in Redis (standalone, Sentinel or Cluster),
// shared by every replica: one Lua script per Take, run atomically by the
// server on its own clock. It is safe for concurrent use.
//
// On a cluster, all keys of one Take must hash to one slot: the caller
// gives them the same hash tag ("{c:alice}:tier:…"). A Take whose reply
// is lost may be retried by the client and then charged twice; that
// errs on the side of rejecting.
type RedisBackend struct {
	client  redis.UniversalClient
	script  *redis.Script
	timeout time.Duration
	prefix  string
}

var _ Backend = (*RedisBackend)(nil)

// errNoClient is returned by every Take of a RedisBackend without client.
var errNoClient = errors.New("counter: nil Redis client")

// NewRedis returns a RedisBackend on client, which remains the caller's to
// close. The script is loaded on first use (EVALSHA, then EVAL on NOSCRIPT).
func NewRedis(client redis.UniversalClient, opts RedisOptions) *RedisBackend {
	opts = opts.withDefaults()
	if client != nil && !contextTimeouts(client) {
		opts.Logger.Warn("rate limit counters: the Redis client ignores context deadlines; "+
			"a hung server holds a Take until the client's read timeout",
			"timeout", opts.Timeout)
	}
	if strings.Contains(opts.Prefix, "{") {
		opts.Logger.Warn("rate limit counters: the key prefix holds '{', which overrides the keys' hash tags on a cluster",
			"prefix", opts.Prefix)
	}
	return &RedisBackend{
		client:  client,
		script:  redis.NewScript(scriptSource),
		timeout: opts.Timeout,
		prefix:  opts.Prefix,
	}
}

// contextTimeouts reports whether client honours context deadlines, when
// that can be told.
func contextTimeouts(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Take implements Backend with one script call (EVALSHA) bounded by the
// backend's Timeout.
func (r *RedisBackend) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	if len(limits) == 0 {
		return true, []Result{}, nil
	}
	allowed, _, results, err := r.take(ctx, limits)
	return allowed, results, err
}

// take is Take, also returning the server's clock (µs) the script ran at.
func (r *RedisBackend) take(ctx context.Context, limits []Limit) (bool, int64, []Result, error) {
	if r.client == nil {
		return false, 0, nil, errNoClient
	}
	var gbuf [smallTake]gcra
	gs, err := gcraParams(limits, gbuf[:])
	if err != nil {
		return false, 0, nil, err
	}
	keys := make([]string, len(limits))
	args := make([]any, 2*len(limits))
	for i, l := range limits {
		keys[i] = r.prefix + l.Key
		args[2*i], args[2*i+1] = gs[i].interval, gs[i].tolerance
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	reply, err := r.script.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return false, 0, nil, fmt.Errorf("counter: redis take (%d limits): %w", len(limits), err)
	}
	return parseReply(reply, len(limits))
}

// parseReply reads the script's reply: allowed, the server's now (µs),
// then remaining, reset and retry (µs) per limit.
func parseReply(reply []int64, n int) (allowed bool, now int64, results []Result, err error) {
	if len(reply) != 2+3*n {
		return false, 0, nil, fmt.Errorf("counter: redis take: %d values in the reply, want %d", len(reply), 2+3*n)
	}
	results = make([]Result, n)
	for i := range results {
		v := reply[2+3*i:]
		results[i] = Result{
			Remaining:  uint64(max(0, v[0])),
			ResetAfter: time.Duration(v[1]) * time.Microsecond,
			RetryAfter: time.Duration(v[2]) * time.Microsecond,
		}
	}
	return reply[0] == 1, reply[1], results, nil
}
