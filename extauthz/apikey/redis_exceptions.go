package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the exceptions table. They share the hash tag
// {exceptions} with the epoch (excEpochKey), so the scripts below, which
// touch all four, are valid on Redis Cluster (one slot); no other key of
// the package is tagged.
const (
	excHashKey    = "tollgate:apikey:{exceptions}"         // hash: id → JSON entry
	excVersionKey = "tollgate:apikey:{exceptions}:version" // string: INCR on every change
	excPruneKey   = "tollgate:apikey:{exceptions}:prune"   // zset: id → unix time it may go
)

func excKeys() []string { return []string{excHashKey, excVersionKey, excPruneKey, excEpochKey} }

// excPrune is the Lua fragment that removes up to ARGV[1]'s limit of
// entries due at the unix time now; it returns how many it removed.
const excPrune = `
local function prune(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  redis.call('HDEL', KEYS[1], unpack(ids))
  redis.call('ZREM', KEYS[3], unpack(ids))
  return #ids
end
`

// excPutScript writes the entry ARGV[2] (JSON, revision ARGV[3]) of key
// ARGV[1] unless the stored entry is revoked (final) or, for an update
// (ARGV[4] = "0"), of the same or a later revision; ARGV[5] is the prune
// time (0: never), ARGV[6] now, ARGV[7] the prune limit. It bumps the
// version when anything changed and returns 1 when it wrote the entry.
var excPutScript = redis.NewScript(excPrune + `
local wrote = 0
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local keep = false
if cur then
  local c = cjson.decode(cur)
  keep = c.revoked == true or (ARGV[4] == '0' and tonumber(c.rev or 0) >= tonumber(ARGV[3]))
end
if not keep then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if tonumber(ARGV[5]) > 0 then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
  wrote = 1
end
if prune(ARGV[6], ARGV[7]) > 0 or wrote == 1 then redis.call('INCR', KEYS[2]) end
return wrote`)

// excReadScript prunes, then returns {version, entries (HGETALL), epoch},
// or {-1, count} when the table holds more than ARGV[2] entries. When the
// store has no epoch (new, or its data was lost) it stores ARGV[4] as the
// epoch first: atomically, so racing replicas agree on one.
var excReadScript = redis.NewScript(excPrune + `
local ep = redis.call('GET', KEYS[4])
if not ep then
  ep = ARGV[4]
  redis.call('SET', KEYS[4], ep)
end
if prune(ARGV[1], ARGV[3]) > 0 then redis.call('INCR', KEYS[2]) end
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[2]) then return {-1, n} end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
return {v, redis.call('HGETALL', KEYS[1]), ep}`)

// putException records the state of a key (record rec at revision rev)
// in the exceptions table.
func (s *RedisStore) putException(ctx context.Context, rec Record, rev int64) error {
	js, err := json.Marshal(exceptionOf(rec, rev))
	if err != nil {
		return fmt.Errorf("apikey: key %s: encode exception: %w", rec.ID, err)
	}
	revoked := "0"
	if rec.Revoked {
		revoked = "1"
	}
	err = excPutScript.Run(ctx, s.client, excKeys(), rec.ID, string(js), rev, revoked, pruneAt(rec, s.now()),
		s.now().Unix(), maxPrunePerCall).Err()
	if err != nil {
		return fmt.Errorf("apikey: key %s: record exception: %w", rec.ID, err)
	}
	return nil
}

// Exceptions implements ExceptionSource: one script that creates the
// store's epoch when it has none, prunes the entries whose token expired
// ExceptionPruneGrace ago and reads the epoch, the version and the
// entries together. It fails with ErrTooManyExceptions above
// MaxExceptions entries, before reading them.
func (s *RedisStore) Exceptions(ctx context.Context) (Exceptions, error) {
	cand, err := newEpoch(s.rand)
	if err != nil {
		return Exceptions{}, err
	}
	res, err := excReadScript.Run(ctx, s.client, excKeys(), s.now().Unix(), MaxExceptions, maxPrunePerCall, cand).Slice()
	if err != nil {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: %w", err)
	}
	if len(res) == 3 {
		return s.decodeTable(res)
	}
	if len(res) != 2 {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: unexpected reply of %d elements", len(res))
	}
	v, _ := res[0].(int64)
	if v < 0 {
		return Exceptions{}, fmt.Errorf("%w: %v entries, bound %d", ErrTooManyExceptions, res[1], MaxExceptions)
	}
	return Exceptions{}, fmt.Errorf("apikey: read exceptions: unexpected reply of version %d", v)
}

// decodeTable decodes excReadScript's {version, entries, epoch}.
func (s *RedisStore) decodeTable(res []any) (Exceptions, error) {
	v, _ := res[0].(int64)
	ep, _ := res[2].(string)
	if ep == "" {
		return Exceptions{}, fmt.Errorf("%w: read exceptions: no epoch in the reply", ErrNoEpoch)
	}
	raw, err := pairs(res[1])
	if err != nil {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: %w", err)
	}
	exc, err := decodeExceptions(v, raw)
	if err != nil {
		return Exceptions{}, err
	}
	exc.Epoch = ep
	s.epochs.set(ep, time.Now())
	return exc, nil
}

// pairs turns an HGETALL reply inside a script's reply (RESP2: a flat
// array; RESP3: a map) into a map.
func pairs(reply any) (map[string]string, error) {
	switch r := reply.(type) {
	case map[any]any:
		out := make(map[string]string, len(r))
		for k, v := range r {
			ks, ok1 := k.(string)
			vs, ok2 := v.(string)
			if !ok1 || !ok2 {
				return nil, errors.New("non-string entry")
			}
			out[ks] = vs
		}
		return out, nil
	case []any:
		if len(r)%2 != 0 {
			return nil, errors.New("odd number of elements")
		}
		out := make(map[string]string, len(r)/2)
		for i := 0; i < len(r); i += 2 {
			ks, ok1 := r[i].(string)
			vs, ok2 := r[i+1].(string)
			if !ok1 || !ok2 {
				return nil, errors.New("non-string entry")
			}
			out[ks] = vs
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %T", reply)
}
