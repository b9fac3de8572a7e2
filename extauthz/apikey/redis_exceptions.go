package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the exceptions table. They share the hash tag
// {exceptions}, so the scripts below, which touch all three, are valid
// on Redis Cluster (one slot); no other key of the package is tagged.
const (
	excHashKey    = "tollgate:apikey:{exceptions}"         // hash: id → JSON entry
	excVersionKey = "tollgate:apikey:{exceptions}:version" // string: INCR on every change
	excPruneKey   = "tollgate:apikey:{exceptions}:prune"   // zset: id → unix time it may go
)

func excKeys() []string { return []string{excHashKey, excVersionKey, excPruneKey} }

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

// excReadScript prunes, then returns {version, entries (HGETALL)}, or
// {-1, count} when the table holds more than ARGV[2] entries.
var excReadScript = redis.NewScript(excPrune + `
if prune(ARGV[1], ARGV[3]) > 0 then redis.call('INCR', KEYS[2]) end
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[2]) then return {-1, n} end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
return {v, redis.call('HGETALL', KEYS[1])}`)

// putException records the state of a signed key (record rec at revision
// rev) in the exceptions table; nothing for an opaque key.
func (s *RedisStore) putException(ctx context.Context, rec Record, rev int64) error {
	if rec.Format != FormatSigned {
		return nil
	}
	js, err := json.Marshal(exceptionOf(rec, rev))
	if err != nil {
		return fmt.Errorf("apikey: key %s: encode exception: %w", rec.ID, err)
	}
	revoked := "0"
	if rec.Revoked {
		revoked = "1"
	}
	err = excPutScript.Run(ctx, s.client, excKeys(), rec.ID, string(js), rev, revoked, pruneAt(rec),
		s.now().Unix(), maxPrunePerCall).Err()
	if err != nil {
		return fmt.Errorf("apikey: key %s: record exception: %w", rec.ID, err)
	}
	return nil
}

// Exceptions implements ExceptionSource: one script that prunes the
// entries whose token expired ExceptionPruneGrace ago and reads the
// version and the entries together. It fails with ErrTooManyExceptions
// above MaxExceptions entries, before reading them.
func (s *RedisStore) Exceptions(ctx context.Context) (Exceptions, error) {
	res, err := excReadScript.Run(ctx, s.client, excKeys(), s.now().Unix(), MaxExceptions, maxPrunePerCall).Slice()
	if err != nil {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: %w", err)
	}
	if len(res) != 2 {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: unexpected reply of %d elements", len(res))
	}
	v, _ := res[0].(int64)
	if v < 0 {
		return Exceptions{}, fmt.Errorf("%w: %v entries, bound %d", ErrTooManyExceptions, res[1], MaxExceptions)
	}
	raw, err := pairs(res[1])
	if err != nil {
		return Exceptions{}, fmt.Errorf("apikey: read exceptions: %w", err)
	}
	return decodeExceptions(v, raw)
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

// Version implements ExceptionSource: one GET.
func (s *RedisStore) Version(ctx context.Context) (int64, error) {
	v, err := s.client.Get(ctx, excVersionKey).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("apikey: read exceptions version: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("apikey: read exceptions version: %w", err)
	}
	return n, nil
}
