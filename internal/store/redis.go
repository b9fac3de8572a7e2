package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis stores versions in Redis so several control-plane replicas share
// one current version and one history. Keys, under Prefix (all in one hash
// slot, for Redis Cluster):
//
//	<prefix>{policy}:version:<id>  string  a Version as JSON
//	<prefix>{policy}:versions      set     ids of the stored versions
//	<prefix>{policy}:current       string  id of the current version
//	<prefix>{policy}:history       list    events as JSON, oldest first
//	<prefix>{policy}:seq           string  last event number
//	<prefix>{policy}:lock          string  push lock (token, with a TTL)
//	<prefix>{policy}:lockseq       string  push lock acquisitions (fencing tokens)
//	<prefix>{policy}:changed       pub/sub the new current id, on every change
//
// The current pointer changes only through a Lua script that compares it
// first (SwapCurrent) and publishes the change in the same step. Writes
// made while this process holds the push lock are fenced (redis_lease.go).
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	keep   int
	log    *slog.Logger
	// timeout bounds one Redis round trip.
	timeout time.Duration
	// renewEvery overrides how often a held push lock is renewed (default
	// a third of its TTL); tests make it long to play a paused holder.
	renewEvery time.Duration
	mu         sync.Mutex
	held       *lease // this process's push lock lease, nil when not held
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// Prefix of every key; default "tollgate:".
	Prefix string
	// Keep is how many history events (and their versions) are kept;
	// default 50.
	Keep int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// OpenRedis returns a store on rdb, after checking that Redis answers.
func OpenRedis(ctx context.Context, rdb redis.UniversalClient, o RedisOptions) (*Redis, error) {
	if o.Prefix == "" {
		o.Prefix = "tollgate:"
	}
	if o.Keep <= 0 {
		o.Keep = 50
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Redis{rdb: rdb, prefix: o.Prefix + "{policy}:", keep: o.Keep, log: o.Logger, timeout: 5 * time.Second}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("open Redis policy store: %w", err)
	}
	return r, nil
}

func (r *Redis) key(name string) string { return r.prefix + name }

func (r *Redis) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// Current returns the current version, or nil when the store is empty.
func (r *Redis) Current() (*Version, error) {
	id, err := r.CurrentID()
	if err != nil || id == "" {
		return nil, err
	}
	return r.Get(id)
}

// CurrentID returns the id of the current version, or "" when the store
// is empty, reading only the current pointer (one GET).
func (r *Redis) CurrentID() (string, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	id, err := r.rdb.Get(ctx, r.key("current")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current version: %w", err)
	}
	return id, nil
}

// Get returns the version id.
func (r *Redis) Get(id string) (*Version, error) {
	if !versionID.MatchString(id) {
		return nil, fmt.Errorf("version %q: %w", id, ErrNotFound)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	b, err := r.rdb.Get(ctx, r.key("version:"+id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("version %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id, err)
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode version %s: %w", id, err)
	}
	return &v, nil
}

// History returns the events, oldest first.
func (r *Redis) History() ([]Event, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	raw, err := r.rdb.LRange(ctx, r.key("history"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	h := make([]Event, 0, len(raw))
	for _, s := range raw {
		var ev Event
		if err := json.Unmarshal([]byte(s), &ev); err != nil {
			return nil, fmt.Errorf("decode history: %w", err)
		}
		h = append(h, ev)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

// Put stores v and adds its id to the set of stored versions, in one
// transaction. It does not make v current; a version that never becomes
// current nor enters the history is deleted by a later prune.
func (r *Redis) Put(v *Version) error {
	if !versionID.MatchString(v.ID) {
		return fmt.Errorf("store version: bad id %q", v.ID)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store version %s: %w", v.ID, err)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key("version:"+v.ID), b, 0)
		p.SAdd(ctx, r.key("versions"), v.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store version %s: %w", v.ID, err)
	}
	return nil
}

// swapScript sets the current pointer to ARGV[2] if it is ARGV[1] (or
// unconditionally when ARGV[3] is "1") and the version exists, then
// publishes the new id. It returns {status, previous current}: status 1
// done, 0 conflict, 2 unknown version.
var swapScript = fencedScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if ARGV[3] ~= '1' and cur ~= ARGV[1] then return {0, cur} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {2, cur} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return {1, cur}
`)

// SetCurrent makes the stored version id current unconditionally.
func (r *Redis) SetCurrent(id string) error { return r.swap("", id, true) }

// SwapCurrent makes id current if old is current ("" for none).
func (r *Redis) SwapCurrent(old, id string) error { return r.swap(old, id, false) }

func (r *Redis) swap(old, id string, force bool) error {
	if !versionID.MatchString(id) {
		return fmt.Errorf("set current version %q: %w", id, ErrNotFound)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	f := "0"
	if force {
		f = "1"
	}
	keys, args := r.fence([]string{r.key("current"), r.key("version:" + id), r.key("changed")}, old, id, f)
	res, err := swapScript.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("set current version %s: %w", id, err)
	}
	if staleFence(res) {
		return errLeaseLost("set current version " + id)
	}
	status, _ := res[0].(int64)
	cur, _ := res[1].(string)
	switch status {
	case 1:
		return nil
	case 2:
		return fmt.Errorf("set current version %s: %w", id, ErrNotFound)
	}
	return &ConflictError{Expected: old, Current: cur, Reason: "another replica changed the current version first"}
}

// randomToken identifies one holder of the push lock.
func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("push lock token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
