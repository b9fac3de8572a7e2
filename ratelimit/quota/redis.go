package quota

import (
	"cmp"
	"context"
	_ "embed" // the Lua script
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/ratelimit/counter"
)

//go:embed settle.lua
var settleSource string

// sharesSuffix names a limit key's shares hash.
const sharesSuffix = ":q"

// RedisAccount is an Account in Redis shared by every control-plane
// replica: one script per hash tag of a settlement, on the server's clock.
// Keys use the counter package's prefix and names, so the exact mode and
// the quota mode charge the same TATs.
type RedisAccount struct {
	client  redis.UniversalClient
	script  *redis.Script
	prefix  string
	timeout time.Duration
}

var _ BatchAccount = (*RedisAccount)(nil)

// batchChunk is how many settlements one pipelined round trip carries: a
// report of 1,000 buckets is 8 round trips, and no single one holds Redis
// (single-threaded, shared with the exact mode's checks) for more than a
// few milliseconds.
const batchChunk = 128

// NewRedisAccount returns a RedisAccount on client (the caller's to close)
// with key prefix (counter.DefaultPrefix when empty) and a timeout per
// script call (counter.DefaultTimeout when 0).
func NewRedisAccount(client redis.UniversalClient, prefix string, timeout time.Duration) *RedisAccount {
	if prefix == "" {
		prefix = counter.DefaultPrefix
	}
	if timeout <= 0 {
		timeout = counter.DefaultTimeout
	}
	return &RedisAccount{client: client, script: redis.NewScript(settleSource), prefix: prefix, timeout: timeout}
}

// Settle implements Account: one script call per hash tag among the
// settlement's keys (one, unless a bucket mixes consumer and client-IP
// keys).
func (r *RedisAccount) Settle(ctx context.Context, s Settlement) ([]KeyState, error) {
	gs, err := params(s.Limits)
	if err != nil {
		return nil, err
	}
	out := make([]KeyState, len(s.Limits))
	for _, group := range byTag(s.Limits) {
		if err := r.settleGroup(ctx, s, gs, group, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SettleBatch implements BatchAccount: the settlements' script calls
// (one per hash tag of each) are pipelined, batchChunk settlements per
// round trip, each round trip bounded by the account's timeout. Between
// round trips it waits as long as the last one took (at most maxPause):
// a large report then keeps this process and Redis busy about half of the
// time instead of in one burst, which on a small host delays Envoy's
// worker (the p99 tail of quota mode); its last answers come later by
// about the batch's own time, well within the 5 s report interval.
func (r *RedisAccount) SettleBatch(ctx context.Context, ss []Settlement) ([][]KeyState, []error) {
	states, errs := make([][]KeyState, len(ss)), make([]error, len(ss))
	for lo := 0; lo < len(ss); lo += batchChunk {
		hi := min(len(ss), lo+batchChunk)
		start := time.Now()
		r.settleChunk(ctx, ss[lo:hi], states[lo:hi], errs[lo:hi])
		if err := chunkFailed(errs[lo:hi]); err != nil {
			for i := hi; i < len(ss); i++ {
				errs[i] = err // Redis is unreachable: don't wait a timeout per chunk
			}
			break
		}
		if hi < len(ss) {
			pause(ctx, min(time.Since(start), maxPause))
		}
	}
	return states, errs
}

// chunkFailed returns the error of a chunk whose every settlement failed
// for a reason other than its limits (Redis down, a timeout), or nil.
func chunkFailed(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil || errors.Is(err, counter.ErrInvalidLimit) {
			return nil
		}
		first = cmp.Or(first, err)
	}
	return first
}

// maxPause bounds the wait between two round trips of a batch.
const maxPause = 20 * time.Millisecond

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// call is one script call of a batch: settlement i's limits group.
type call struct {
	i     int
	group []int
	keys  []string
	args  []any
	cmd   *redis.Cmd
}

// settleChunk settles ss in one pipelined round trip, filling states and
// errs; the calls Redis refused for want of the script (NOSCRIPT: it was
// never loaded, or flushed) are sent again with the script itself.
func (r *RedisAccount) settleChunk(ctx context.Context, ss []Settlement, states [][]KeyState, errs []error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var calls []call
	for i, s := range ss {
		gs, err := params(s.Limits)
		if err != nil {
			errs[i] = err
			continue
		}
		states[i] = make([]KeyState, len(s.Limits))
		for _, group := range byTag(s.Limits) {
			keys, args := r.scriptArgs(s, gs, group)
			calls = append(calls, call{i: i, group: group, keys: keys, args: args})
		}
	}
	r.send(ctx, calls, r.script.EvalSha)
	var missing []*call
	for k := range calls {
		if err := calls[k].cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			missing = append(missing, &calls[k])
		}
	}
	if len(missing) > 0 {
		again := make([]call, len(missing))
		for k, c := range missing {
			again[k] = *c
		}
		r.send(ctx, again, r.script.Eval)
		for k, c := range missing {
			c.cmd = again[k].cmd
		}
	}
	for _, c := range calls {
		if errs[c.i] != nil {
			continue
		}
		reply, err := c.cmd.Slice()
		if err == nil {
			err = parseReply(reply, c.group, states[c.i])
		}
		if err != nil {
			errs[c.i], states[c.i] = fmt.Errorf("quota: settle %d limits: %w", len(c.group), err), nil
		}
	}
}

// send runs calls in one pipeline with run (EvalSha, or Eval, which
// loads the script), setting each call's cmd.
func (r *RedisAccount) send(ctx context.Context, calls []call, run func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd) {
	pipe := r.client.Pipeline()
	for k := range calls {
		calls[k].cmd = run(ctx, pipe, calls[k].keys, calls[k].args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
}

// scriptArgs are the keys and arguments of the settle script for one hash
// tag group of s.
func (r *RedisAccount) scriptArgs(s Settlement, gs []gcraParams, group []int) ([]string, []any) {
	keys := make([]string, 0, 2*len(group))
	args := make([]any, 0, 5+2*len(group))
	keep := 0
	switch {
	case s.Release:
		keep = 2
	case s.Keep:
		keep = 1
	}
	args = append(args, s.Participant, s.Used, strconv.FormatFloat(s.Demand, 'g', -1, 64), s.Hold.Microseconds(), keep)
	for _, i := range group {
		k := r.prefix + s.Limits[i].Key
		keys = append(keys, k, k+sharesSuffix)
		args = append(args, gs[i].interval, gs[i].tolerance)
	}
	return keys, args
}

// parseReply reads the script's reply for group into out.
func parseReply(reply []any, group []int, out []KeyState) error {
	if len(reply) != 3*len(group) {
		return fmt.Errorf("%d values in the reply, want %d", len(reply), 3*len(group))
	}
	for j, i := range group {
		rem, ok := reply[3*j].(int64)
		share, err1 := parseFloat(reply[3*j+1])
		grant, err2 := parseFloat(reply[3*j+2])
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("malformed reply %v", reply)
		}
		out[i] = KeyState{Remaining: uint64(max(0, rem)), Share: share, Grant: grant}
	}
	return nil
}

func (r *RedisAccount) settleGroup(ctx context.Context, s Settlement, gs []gcraParams, group []int, out []KeyState) error {
	keys, args := r.scriptArgs(s, gs, group)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	reply, err := r.script.Run(ctx, r.client, keys, args...).Slice()
	if err == nil {
		err = parseReply(reply, group, out)
	}
	if err != nil {
		return fmt.Errorf("quota: settle %d limits: %w", len(group), err)
	}
	return nil
}

// byTag groups limit indices by the hash tag of their keys ("{…}"), in
// first-seen order.
func byTag(limits []counter.Limit) [][]int {
	var groups [][]int
	index := map[string]int{}
	for i, l := range limits {
		tag := l.Key
		if a := strings.IndexByte(tag, '{'); a >= 0 {
			if b := strings.IndexByte(tag[a:], '}'); b > 0 {
				tag = tag[a : a+b+1]
			}
		}
		g, ok := index[tag]
		if !ok {
			g = len(groups)
			index[tag] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

func parseFloat(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("not a string: %v", v)
	}
	return strconv.ParseFloat(s, 64)
}

var _ Notifier = (*RedisAccount)(nil)

// rebalanceChannel is the pub/sub channel of rebalancing messages, under
// the account's prefix.
func (r *RedisAccount) rebalanceChannel() string { return r.prefix + "rlqs:rebalance" }

// Publish implements Notifier with PUBLISH (broadcast to every node of a
// Redis Cluster).
func (r *RedisAccount) Publish(ctx context.Context, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.client.Publish(ctx, r.rebalanceChannel(), msg).Err()
}

// Subscribe implements Notifier: it calls fn with every message on the
// channel until ctx ends (go-redis resubscribes after a lost connection;
// messages published meanwhile are lost, and the bucket then waits for its
// holders' next report as without rebalancing).
func (r *RedisAccount) Subscribe(ctx context.Context, fn func(msg string)) {
	ps := r.client.Subscribe(ctx, r.rebalanceChannel())
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			fn(m.Payload)
		}
	}
}
