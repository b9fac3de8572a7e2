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

// SetEndpointOverrides replaces the overrides and publishes "endpoints" on
// the change channel in one transaction, so every replica re-applies them.
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
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key("endpoints"), b, 0)
		p.Publish(ctx, r.key("changed"), "endpoints")
		return nil
	})
	if err != nil {
		return fmt.Errorf("store endpoint overrides: %w", err)
	}
	return nil
}
