package store

import (
	"encoding/json"
	"fmt"
)

// beginScript is swapScript and appendScript in one atomic step: if the
// current pointer (KEYS[1]) is ARGV[1] and the version (KEYS[2]) exists, it
// sets the pointer to ARGV[2], appends the event ARGV[3] (JSON without seq)
// to the history (KEYS[4], numbered by KEYS[5]), trims the history to
// ARGV[4] events and publishes the new id (KEYS[3]). It returns {status,
// previous current, seq, trimmed events}: status 1 done, 0 conflict, 2
// unknown version.
var beginScript = fencedScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {0, cur, 0, {}} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {2, cur, 0, {}} end
local history, counter, event, keep = KEYS[4], KEYS[5], ARGV[3], ARGV[4]
` + appendEventLua + `
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return {1, cur, seq, dropped}
`)

// Begin makes ev.Version current if old is current and appends ev, in one
// Lua script (atomic in Redis, and in its AOF or replication stream).
func (r *Redis) Begin(old string, ev Event) (Event, error) {
	if !versionID.MatchString(ev.Version) {
		return ev, fmt.Errorf("set current version %q: %w", ev.Version, ErrNotFound)
	}
	ev.Seq = 0
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	keys := []string{r.key("current"), r.key("version:" + ev.Version), r.key("changed"), r.key("history"), r.key("seq")}
	keys, args := r.fence(keys, old, ev.Version, string(b), r.keep)
	res, err := beginScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return ev, fmt.Errorf("set current version %s: %w", ev.Version, err)
	}
	if staleFence(res) {
		return ev, errLeaseLost("set current version " + ev.Version)
	}
	status, _ := res[0].(int64)
	cur, _ := res[1].(string)
	switch status {
	case 0:
		return ev, &ConflictError{Expected: old, Current: cur, Reason: "another replica changed the current version first"}
	case 2:
		return ev, fmt.Errorf("set current version %s: %w", ev.Version, ErrNotFound)
	}
	seq, _ := res[2].(int64)
	ev.Seq = int(seq)
	dropped, _ := res[3].([]any)
	return ev, r.pruneAfter(ctx, dropped)
}

// StageBegin prepares nothing: Begin is one Lua script, which Commit runs.
func (r *Redis) StageBegin(old string, ev Event) StagedBegin {
	return lateBegin{begin: r.Begin, old: old, ev: ev}
}

// resolveScript settles the pending event number ARGV[1] of the history
// (KEYS[1]): its outcome becomes ARGV[2] and, if ARGV[3] is not empty, its
// message ARGV[3]. If ARGV[4] is "1" and the event's version is still
// current (KEYS[2]), the current pointer becomes ARGV[5] first and the
// change is published (KEYS[3]). It returns {1, settled event JSON}, or
// {0, ""} when the event is not pending or not in the history.
var resolveScript = fencedScript(`
local seq = tonumber(ARGV[1])
local n = redis.call('LLEN', KEYS[1])
for i = n - 1, 0, -1 do
  local ev = cjson.decode(redis.call('LINDEX', KEYS[1], i))
  if tonumber(ev['seq']) == seq then
    if ev['outcome'] ~= 'pending' then return {0, ''} end
    if ARGV[4] == '1' and redis.call('GET', KEYS[2]) == ev['version'] then
      redis.call('SET', KEYS[2], ARGV[5])
      redis.call('PUBLISH', KEYS[3], ARGV[5])
    end
    ev['outcome'] = ARGV[2]
    if ARGV[3] ~= '' then ev['message'] = ARGV[3] end
    local s = cjson.encode(ev)
    redis.call('LSET', KEYS[1], i, s)
    return {1, s}
  end
end
return {0, ''}
`)

// Resolve settles the pending event r.Seq, reverting the current pointer
// in the same Lua script when asked.
func (r *Redis) Resolve(res Resolution) (Event, error) {
	revert := "0"
	if res.Revert && res.Previous != "" {
		if !versionID.MatchString(res.Previous) {
			return Event{}, fmt.Errorf("revert to version %q: %w", res.Previous, ErrNotFound)
		}
		revert = "1"
	}
	ctx, cancel := r.ctx()
	defer cancel()
	keys := []string{r.key("history"), r.key("current"), r.key("changed")}
	keys, args := r.fence(keys, res.Seq, res.Outcome, res.Message, revert, res.Previous)
	out, err := resolveScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return Event{}, fmt.Errorf("resolve event %d: %w", res.Seq, err)
	}
	if staleFence(out) {
		return Event{}, errLeaseLost(fmt.Sprintf("resolve event %d", res.Seq))
	}
	if ok, _ := out[0].(int64); ok != 1 {
		return Event{}, fmt.Errorf("resolve event %d: %w", res.Seq, ErrNotPending)
	}
	s, _ := out[1].(string)
	var ev Event
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		return Event{}, fmt.Errorf("decode event %d: %w", res.Seq, err)
	}
	return ev, nil
}
