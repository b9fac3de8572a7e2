package counter

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed script.lua
var gcraScript string

// RedisOptions tune the Redis backend.
type RedisOptions struct {
	// Timeout bounds one Take (default 50 ms), well under Envoy's 100 ms
	// rate-limit call timeout, so the failure mode decides in time.
	Timeout time.Duration
	// Prefix of every key (default "tollgate:rl:").
	Prefix string
}

// Redis is the Redis backend: one Lua script per Take (EVALSHA, loaded on
// first use) evaluates every limit of the request in one round trip.
type Redis struct {
	client redis.UniversalClient
	script *redis.Script
	opts   RedisOptions
}

var _ Backend = (*Redis)(nil)

// NewRedis returns a backend on client.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Prefix == "" {
		opts.Prefix = "tollgate:rl:"
	}
	return &Redis{client: client, script: redis.NewScript(gcraScript), opts: opts}
}

// Take implements Backend. The caller passes keys of one hash slot.
func (r *Redis) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	if len(limits) == 0 {
		return true, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	keys := make([]string, len(limits))
	args := make([]any, 0, 2*len(limits))
	for i, l := range limits {
		g := params(l)
		keys[i] = r.opts.Prefix + l.Key
		args = append(args, strconv.FormatInt(g.t, 10), strconv.FormatInt(g.tau, 10))
	}
	vals, err := r.script.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return false, nil, fmt.Errorf("rate limit script: %w", err)
	}
	if len(vals) != 1+3*len(limits) {
		return false, nil, fmt.Errorf("rate limit script: %d values for %d limits", len(vals), len(limits))
	}
	results := make([]Result, len(limits))
	for i := range limits {
		v := vals[1+3*i:]
		results[i] = Result{Remaining: uint64(max(v[0], 0)), ResetAfter: us(v[1]), RetryAfter: us(v[2])}
	}
	return vals[0] == 1, results, nil
}
