package quota

import (
	"context"
	_ "embed" // the Lua script
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

var _ Account = (*RedisAccount)(nil)

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

func (r *RedisAccount) settleGroup(ctx context.Context, s Settlement, gs []gcraParams, group []int, out []KeyState) error {
	keys := make([]string, 0, 2*len(group))
	args := []any{s.Participant, s.Used, strconv.FormatFloat(s.Demand, 'g', -1, 64), s.Hold.Microseconds()}
	for _, i := range group {
		k := r.prefix + s.Limits[i].Key
		keys = append(keys, k, k+sharesSuffix)
		args = append(args, gs[i].interval, gs[i].tolerance)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	reply, err := r.script.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("quota: settle %d limits: %w", len(group), err)
	}
	if len(reply) != 3*len(group) {
		return fmt.Errorf("quota: settle: %d values in the reply, want %d", len(reply), 3*len(group))
	}
	for j, i := range group {
		rem, ok := reply[3*j].(int64)
		share, err1 := parseFloat(reply[3*j+1])
		grant, err2 := parseFloat(reply[3*j+2])
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("quota: settle: malformed reply %v", reply)
		}
		out[i] = KeyState{Remaining: uint64(max(0, rem)), Share: share, Grant: grant}
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
