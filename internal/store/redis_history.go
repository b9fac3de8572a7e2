package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// appendScript numbers the event (ARGV[1], JSON without seq), appends it
// and trims the history to ARGV[2] events, atomically. It returns the
// sequence number and the events trimmed away.
var appendScript = fencedScript(`
local history, counter, event, keep = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
` + appendEventLua + `
return {seq, dropped}
`)

// appendEventLua is the Lua shared by appendScript and beginScript: it
// numbers the JSON event (from the counter key), appends it to the history
// list and trims the list to keep events, leaving seq and dropped (the
// events trimmed away) set. The script defines history, counter, event and
// keep first.
const appendEventLua = `
local seq = redis.call('INCR', counter)
local ev = cjson.decode(event)
ev['seq'] = seq
redis.call('RPUSH', history, cjson.encode(ev))
local n = redis.call('LLEN', history)
keep = tonumber(keep)
local dropped = {}
if n > keep then
  dropped = redis.call('LRANGE', history, 0, n - keep - 1)
  redis.call('LTRIM', history, n - keep, -1)
end
`

// Append adds ev to the history, numbering it, and deletes versions that
// fell out of it (unless current or still named by a kept event).
func (r *Redis) Append(ev Event) (Event, error) {
	ev.Seq = 0
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	keys, args := r.fence([]string{r.key("history"), r.key("seq")}, string(b), r.keep)
	res, err := appendScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	if staleFence(res) {
		return ev, errLeaseLost("store history")
	}
	seq, _ := res[0].(int64)
	ev.Seq = int(seq)
	if dropped, _ := res[1].([]any); len(dropped) > 0 {
		return ev, r.prune(ctx, dropped)
	}
	return ev, nil
}

// prune deletes the versions of dropped events that neither the kept
// history nor the current pointer names.
func (r *Redis) prune(ctx context.Context, dropped []any) error {
	h, err := r.History()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range h {
		keep[e.Version] = true
	}
	if cur, err := r.rdb.Get(ctx, r.key("current")).Result(); err == nil {
		keep[cur] = true
	}
	for _, d := range dropped {
		s, _ := d.(string)
		var ev Event
		if json.Unmarshal([]byte(s), &ev) != nil || keep[ev.Version] || !versionID.MatchString(ev.Version) {
			continue
		}
		keep[ev.Version] = true // delete once
		if err := r.rdb.Del(ctx, r.key("version:"+ev.Version)).Err(); err != nil {
			return fmt.Errorf("prune version %s: %w", ev.Version, err)
		}
	}
	return nil
}

// Changes subscribes to the change channel. The channel it returns gets a
// value (coalesced) whenever another replica moves the current pointer;
// callers still poll now and then, since pub/sub drops messages while
// disconnected.
func (r *Redis) Changes(ctx context.Context) <-chan struct{} {
	return r.subscribe(ctx, r.key("changed"))
}

// subscribe returns a channel that gets a value (coalesced: at most one
// pending) for every message on the Redis channel, and is closed once ctx
// ends.
func (r *Redis) subscribe(ctx context.Context, channel string) <-chan struct{} {
	out := make(chan struct{}, 1)
	sub := r.rdb.Subscribe(ctx, channel)
	go func() {
		defer close(out)
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
