package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The push lock is a lease with a fencing token:
//
//   - <prefix>{policy}:lock holds the holder's random token with a TTL;
//   - <prefix>{policy}:lockseq counts the acquisitions: the value after a
//     holder's acquisition is its fencing token.
//
// While a process holds the lock, a goroutine renews it every third of its
// TTL, so a live push keeps it however long its ACK wait lasts, and a dead
// replica's lock expires one TTL after its last renewal. Every write the
// store makes while this process holds a lease (Begin, Resolve, Append,
// SwapCurrent, SetCurrent, SetEndpointOverrides) runs in a Lua script that
// first checks the fence: lockseq still equals the holder's token (nobody
// took the lock since) and the lock is the holder's or expired. A holder
// that was paused (SIGSTOP, a long GC or network partition) past its lease
// while another replica took the lock therefore cannot write anything when
// it resumes: the write is refused with a *ConflictError (errLeaseLost).

// lease is this process's hold on the push lock.
type lease struct {
	token string
	seq   string // the fencing token, lockseq after our acquisition
	stop  chan struct{}
	done  sync.WaitGroup
}

// lockScript takes the lock (KEYS[1]) for ARGV[1] with a TTL of ARGV[2]
// ms if it is free, and returns the new acquisition count (KEYS[2]), or 0
// when another holder has it.
var lockScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
`)

// renewScript extends the lease of token ARGV[1] (fencing token ARGV[2])
// to ARGV[3] ms: the lock must still be ours, or have expired with nobody
// taking it since (lockseq unchanged), in which case it is taken back. It
// returns 1, or 0 when the lease is lost.
var renewScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
`)

// unlockScript deletes the lock only if it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// fenceLua starts every fenced write script. The last two KEYS are the lock
// and lockseq keys, the last two ARGV the holder's token and fencing token
// ("" when this process holds no lease: the write is not fenced). A stale
// holder gets {-1, current holder}.
const fenceLua = `
local fk, fa = #KEYS, #ARGV
if ARGV[fa - 1] ~= '' then
  local holder = redis.call('GET', KEYS[fk - 1])
  local seq = redis.call('GET', KEYS[fk]) or ''
  if seq ~= ARGV[fa] or (holder and holder ~= ARGV[fa - 1]) then return {-1, holder or ''} end
end
`

// fencedScript is a write script that checks the fence first (fenceLua).
func fencedScript(body string) *redis.Script { return redis.NewScript(fenceLua + body) }

// fence appends the fence's keys and arguments to a fenced script's.
func (r *Redis) fence(keys []string, args ...any) ([]string, []any) {
	token, seq := "", ""
	r.mu.Lock()
	if r.held != nil {
		token, seq = r.held.token, r.held.seq
	}
	r.mu.Unlock()
	return append(keys, r.key("lock"), r.key("lockseq")), append(args, token, seq)
}

// errLeaseLost is the error of a fenced write refused because this process
// lost the push lock to another holder.
func errLeaseLost(what string) error {
	return &ConflictError{Reason: what + ": this replica lost the push lock (it was paused or cut off from Redis for longer " +
		"than the lock's lease) and another replica took it; nothing was written"}
}

// staleFence tells whether a fenced script's result is the fence's refusal.
func staleFence(res []any) bool {
	n, ok := res[0].(int64)
	return ok && n == -1
}

// Lock takes the push lock for a lease of ttl, renewed every ttl/3 until
// unlock is called, so a crashed replica's lock expires within ttl of its
// death. A lock held by another process is a *ConflictError: another push
// is under way. While the lease is held, the store's writes are fenced
// (see the top of this file).
func (r *Redis) Lock(ctx context.Context, ttl time.Duration) (func(), error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	ms := ttl.Milliseconds()
	n, err := lockScript.Run(ctx, r.rdb, []string{r.key("lock"), r.key("lockseq")}, token, ms).Int64()
	if err != nil {
		return nil, fmt.Errorf("take the push lock: %w", err)
	}
	if n == 0 {
		return nil, &ConflictError{Reason: "another push or endpoint change is in progress on another replica"}
	}
	l := &lease{token: token, seq: strconv.FormatInt(n, 10), stop: make(chan struct{})}
	r.mu.Lock()
	r.held = l
	r.mu.Unlock()
	l.done.Add(1)
	go r.renew(l, ttl)
	return sync.OnceFunc(func() { r.release(l) }), nil
}

// renew keeps l alive every renewEvery (default ttl/3) until l.stop closes;
// a lost lease is logged, and the fence then refuses this process's writes.
func (r *Redis) renew(l *lease, ttl time.Duration) {
	defer l.done.Done()
	every := r.renewEvery
	if every <= 0 {
		every = ttl / 3
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := r.ctx()
		ok, err := renewScript.Run(ctx, r.rdb, []string{r.key("lock"), r.key("lockseq")}, l.token, l.seq, ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err != nil:
			r.log.Warn("renew the push lock (retrying; it expires if Redis stays unreachable)", "err", err)
		case ok == 0:
			r.log.Error("lost the push lock: another replica took it; this replica's writes to the store are refused until the push ends")
			return
		}
	}
}

// release stops renewing l, deletes the lock if it is still ours and ends
// the fence.
func (r *Redis) release(l *lease) {
	close(l.stop)
	l.done.Wait()
	r.mu.Lock()
	if r.held == l {
		r.held = nil
	}
	r.mu.Unlock()
	ctx, cancel := r.ctx()
	defer cancel()
	if err := unlockScript.Run(ctx, r.rdb, []string{r.key("lock")}, l.token).Err(); err != nil {
		r.log.Warn("release the push lock (it expires by itself)", "err", err)
	}
}
