package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// EndpointOverrides returns the stored overrides by backend (empty, not
// nil, when there are none): <prefix>{policy}:endpoints, one JSON object.
func (r *Redis) EndpointOverrides() (map[string]EndpointOverride, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	out := map[string]EndpointOverride{}
	b, err := r.rdb.Get(ctx, r.key("endpoints")).Bytes()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read endpoint overrides: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode endpoint overrides: %w", err)
	}
	return out, nil
}

// setOverridesScript stores the overrides (KEYS[1] = ARGV[1]) and
// publishes "endpoints" on the change channel (KEYS[2]), fenced.
var setOverridesScript = fencedScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], 'endpoints')
return {1}
`)

// SetEndpointOverrides replaces the overrides and publishes "endpoints" on
// the change channel in one script, so every replica re-applies them.
func (r *Redis) SetEndpointOverrides(m map[string]EndpointOverride) error {
	if m == nil {
		m = map[string]EndpointOverride{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("store endpoint overrides: %w", err)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	keys, args := r.fence([]string{r.key("endpoints"), r.key("changed")}, string(b))
	res, err := setOverridesScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("store endpoint overrides: %w", err)
	}
	if staleFence(res) {
		return errLeaseLost("store endpoint overrides")
	}
	return nil
}
