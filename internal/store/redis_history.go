package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
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
	dropped, _ := res[1].([]any)
	return ev, r.pruneAfter(ctx, dropped)
}

// pruneAfter prunes after an event was appended: when the append trimmed
// events (dropped), or when more versions are stored than the history and
// the current pointer can name (keep + 1), which happens when pushes failed
// after storing their version and before Begin (validation passed, then
// translation, a conflict or a lost lease stopped them). So at most keep + 1
// versions remain after every Begin or Append.
func (r *Redis) pruneAfter(ctx context.Context, dropped []any) error {
	if len(dropped) == 0 {
		n, err := r.rdb.SCard(ctx, r.key("versions")).Result()
		if err != nil {
			return fmt.Errorf("count stored versions: %w", err)
		}
		if n <= int64(r.keep)+1 {
			return nil
		}
	}
	return r.prune(ctx, dropped)
}

// prune deletes the stored versions, and those of dropped events, that
// neither the kept history nor the current pointer names. It runs while
// the push lock is held, so no other replica is between its Put and Begin.
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
	stored, err := r.rdb.SMembers(ctx, r.key("versions")).Result()
	if err != nil {
		return fmt.Errorf("list stored versions: %w", err)
	}
	for _, d := range dropped { // versions stored before the set existed
		s, _ := d.(string)
		var ev Event
		if json.Unmarshal([]byte(s), &ev) == nil {
			stored = append(stored, ev.Version)
		}
	}
	for _, id := range stored {
		if keep[id] || !versionID.MatchString(id) {
			continue
		}
		keep[id] = true // delete once
		if err := r.deleteVersion(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// deleteVersion deletes version id and its entry in the set of stored
// versions, in one transaction.
func (r *Redis) deleteVersion(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.key("version:"+id))
		p.SRem(ctx, r.key("versions"), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune version %s: %w", id, err)
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
