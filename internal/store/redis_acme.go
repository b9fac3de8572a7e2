package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisACME keeps the ACME state of every replica in Redis (internal/acme's
// KV and Locker), under <prefix>{acme}: (one hash slot):
//
//	<prefix>{acme}:accounts/<id>.json        account URL and private key
//	<prefix>{acme}:certificates/<name>.pem   certificate private key and chain
//	<prefix>{acme}:secrets.json              which certificate each SDS secret serves
//	<prefix>{acme}:challenges/<token>        pending HTTP-01 answer (10 min TTL)
//	<prefix>{acme}:locks/account-<id>        order lock (token, 30 s TTL, renewed)
//	<prefix>{acme}:changed                   pub/sub: the name of every durable entry replaced
//
// The private keys are stored in clear: whoever can read these keys (any
// client of this Redis database with the password/ACL that allows it) can
// impersonate the gateway's domains. Values are never logged.
type RedisACME struct {
	r      *Redis
	prefix string
}

// ACME returns the store's ACME state.
func (r *Redis) ACME() *RedisACME {
	return &RedisACME{r: r, prefix: strings.TrimSuffix(r.prefix, "{policy}:") + "{acme}:"}
}

// Get returns the entry name, or an error wrapping fs.ErrNotExist.
func (a *RedisACME) Get(name string) ([]byte, error) {
	ctx, cancel := a.r.ctx()
	defer cancel()
	b, err := a.r.rdb.Get(ctx, a.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("acme %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read acme %s: %w", name, err)
	}
	return b, nil
}

// Put replaces the entry name; ttl > 0 makes it expire. A durable entry
// (ttl 0: an account, a certificate) is announced on <prefix>{acme}:changed
// in the same transaction.
func (a *RedisACME) Put(name string, b []byte, ttl time.Duration) error {
	ctx, cancel := a.r.ctx()
	defer cancel()
	_, err := a.r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, a.prefix+name, b, ttl)
		if ttl <= 0 {
			p.Publish(ctx, a.prefix+"changed", name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store acme %s: %w", name, err)
	}
	return nil
}

// Changes receives (coalesced) whenever a replica replaced a durable entry,
// until ctx ends (acme.Watcher).
func (a *RedisACME) Changes(ctx context.Context) <-chan struct{} {
	return a.r.subscribe(ctx, a.prefix+"changed")
}

// Delete removes the entry name.
func (a *RedisACME) Delete(name string) error {
	ctx, cancel := a.r.ctx()
	defer cancel()
	if err := a.r.rdb.Del(ctx, a.prefix+name).Err(); err != nil {
		return fmt.Errorf("delete acme %s: %w", name, err)
	}
	return nil
}

// refreshScript extends the lock's TTL (ARGV[2] ms) only if it still holds
// our token (ARGV[1]).
var refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// TryLock takes the lock name for ttl and renews it every ttl/3 until
// unlock; held is false when another holder has it.
func (a *RedisACME) TryLock(name string, ttl time.Duration) (unlock func(), held bool, err error) {
	token, err := randomToken()
	if err != nil {
		return nil, false, err
	}
	key := a.prefix + name
	ctx, cancel := a.r.ctx()
	defer cancel()
	ok, err := a.r.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil || !ok {
		return nil, false, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { a.keep(key, token, ttl, stop) })
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			ctx, cancel := a.r.ctx()
			defer cancel()
			if err := unlockScript.Run(ctx, a.r.rdb, []string{key}, token).Err(); err != nil {
				a.r.log.Warn("release the acme lock (it expires by itself)", "lock", name, "err", err)
			}
		})
	}, true, nil
}

// keep renews the lock until stop closes.
func (a *RedisACME) keep(key, token string, ttl time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := a.r.ctx()
			n, err := refreshScript.Run(ctx, a.r.rdb, []string{key}, token, ttl.Milliseconds()).Int()
			cancel()
			if err != nil || n == 0 {
				a.r.log.Warn("the acme lock could not be renewed; another replica may order too", "lock", key, "err", err)
			}
		}
	}
}
