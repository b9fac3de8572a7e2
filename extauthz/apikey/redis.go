package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/breaker"
)

// Defaults of RedisOptions.
const (
	DefaultCacheTTL     = 5 * time.Second
	DefaultCacheSize    = 10000
	DefaultMaxStaleness = time.Second
	// DefaultLookupTimeout bounds a lookup whose context has no deadline:
	// 3/4 of Envoy's default ext_authz timeout (200 ms).
	DefaultLookupTimeout = 150 * time.Millisecond
	// MinPepperLen is the shortest pepper NewRedisStore accepts.
	MinPepperLen = 16
)

// revokeScript marks a record revoked only if it exists, so that revoking
// the id of a half-created key cannot conjure up a partial record. It
// touches one key, so it is valid on Redis Cluster.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1`)

// RedisOptions configure a RedisStore. The zero value is usable.
type RedisOptions struct {
	Logger *slog.Logger // default slog.Default()
	// Now stamps CreatedAt and decides expiry (default time.Now). The
	// cache's own timing always uses the monotonic clock.
	Now func() time.Time
	// Rand is the source of keys (default crypto/rand.Reader).
	Rand io.Reader
	// CacheTTL bounds how long a lookup result is reused (default
	// DefaultCacheTTL). Revocations invalidate entries long before that.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached results (default
	// DefaultCacheSize); a negative size disables the cache.
	CacheSize int
	// MaxStaleness bounds how late a revocation may take effect on this
	// store when the invalidation message is lost (default
	// DefaultMaxStaleness): the cache is bypassed while the subscription
	// cannot vouch for it.
	MaxStaleness time.Duration
	// LookupTimeout bounds a Lookup's Redis round trip when its context
	// has no deadline (default DefaultLookupTimeout). With a deadline, the
	// round trip gets the time left minus a margin (lookupContext).
	LookupTimeout time.Duration
	// Breaker tunes the circuit breaker of Lookup (its Name and Logger
	// are the store's): failures open it, and lookups then fail fast with
	// ErrUnavailable until a probe succeeds.
	Breaker breaker.Options
	// Signer signs the keys Create issues by default (nil: opaque keys
	// only). Build it with NewSigner from the same pepper.
	Signer *Signer
}

// RedisStore is a Store in Redis (standalone, Sentinel or Cluster), shared
// by every ext_authz replica. Each replica caches lookups locally and
// drops cached entries when a revocation is announced on RevokedChannel.
// It is safe for concurrent use.
type RedisStore struct {
	client redis.UniversalClient
	hash   *hasher
	signer *Signer // nil: opaque keys only
	now    func() time.Time
	rand   io.Reader
	cache  *cache      // nil: no cache
	sub    *subscriber // nil: no cache
	cancel context.CancelFunc
	// guard fails lookups fast while Redis is down; timeout is
	// RedisOptions.LookupTimeout.
	guard   *breaker.Breaker
	timeout time.Duration
	epochs  epochCache // the epoch last read, for Lookup
}

var (
	_ Store           = (*RedisStore)(nil)
	_ ExceptionSource = (*RedisStore)(nil)
)

// NewRedisStore returns a store that keeps its records in Redis through
// client, indexed by HMAC-SHA256(pepper, key). Its cache invalidation
// subscription runs until ctx is done or Close is called. The client
// remains the caller's to close, after the store.
func NewRedisStore(ctx context.Context, client redis.UniversalClient, pepper []byte, opts RedisOptions) (*RedisStore, error) {
	if client == nil {
		return nil, errors.New("apikey: nil Redis client")
	}
	if len(pepper) < MinPepperLen {
		return nil, fmt.Errorf("apikey: the pepper must be at least %d bytes", MinPepperLen)
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	s := &RedisStore{client: client, hash: newHasher(pepper), signer: opts.Signer, now: opts.Now, rand: opts.Rand,
		cancel: cancel, guard: breaker.New(opts.Breaker), timeout: opts.LookupTimeout}
	if opts.CacheSize >= 0 {
		s.cache = newCache(opts.CacheSize, opts.CacheTTL)
		s.sub = startSubscriber(ctx, client, s.cache, opts.Logger, opts.MaxStaleness)
	}
	return s, nil
}

func (o RedisOptions) withDefaults() RedisOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MaxStaleness <= 0 {
		o.MaxStaleness = DefaultMaxStaleness
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = DefaultLookupTimeout
	}
	o.Breaker.Name, o.Breaker.Logger = "API key store (Redis)", o.Logger
	if o.Breaker.Fatal == nil {
		o.Breaker.Fatal = refused
	}
	return o
}

// Signer returns the store's signer, nil when it issues opaque keys only.
func (s *RedisStore) Signer() *Signer { return s.signer }

// Close stops the invalidation subscription. Lookups keep working,
// without the cache.
func (s *RedisStore) Close() error {
	s.cancel()
	if s.sub != nil {
		s.sub.close()
		s.cache.flush()
	}
	return nil
}

// Create implements Store. The id is reserved first (SET NX), then added
// to the consumer's set, and the record hash is written last: a crash
// half-way leaves an id without a record, never a usable key that List
// does not show.
func (s *RedisStore) Create(ctx context.Context, rec Record) (string, Record, error) {
	base, err := newRecord(rec, "", s.now())
	if err != nil {
		return "", Record{}, err
	}
	if base, err = withFormat(base, s.signer); err != nil {
		return "", Record{}, err
	}
	ep := ""
	if base.Format == FormatSigned {
		if ep, err = s.ensureEpoch(ctx); err != nil {
			return "", Record{}, fmt.Errorf("apikey: create key: %w", err)
		}
	}
	for range maxIDAttempts {
		key, stored, err := mint(s.rand, s.signer, base, ep)
		if err != nil {
			return "", Record{}, err
		}
		h := s.hash.sum(key)
		ok, err := s.client.SetNX(ctx, idKey(stored.ID), h, 0).Result()
		if err != nil {
			return "", Record{}, fmt.Errorf("apikey: reserve key id: %w", err)
		}
		if !ok {
			continue
		}
		if err := s.write(ctx, h, stored); err != nil {
			return "", Record{}, err
		}
		return key, stored, nil
	}
	return "", Record{}, errIDSpace
}

func (s *RedisStore) write(ctx context.Context, h string, rec Record) error {
	fields, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("apikey: key %s: %w", rec.ID, err)
	}
	if err := s.client.SAdd(ctx, consumerKey(rec.Consumer), rec.ID).Err(); err != nil {
		return fmt.Errorf("apikey: key %s: add to consumer: %w", rec.ID, err)
	}
	if err := s.client.HSet(ctx, recordKey(h), fields...).Err(); err != nil {
		return fmt.Errorf("apikey: key %s: write record: %w", rec.ID, err)
	}
	return nil
}

// Lookup implements Store. A malformed key costs no Redis command; a
// cached one none either; otherwise one HGETALL. A signed key from
// another key-store epoch than the current one (read at most
// epochCheckInterval ago: a GET at most that often) is ErrNotFound. The
// record carries the epoch current when it was fetched (Record.Epoch;
// for an opaque key too, read as for a signed key: a GET at most every
// epochCheckInterval, none while the exceptions watcher of `tollgate
// serve` keeps it current; "" when that read fails, and the lookup goes
// on without it).
func (s *RedisStore) Lookup(ctx context.Context, key string) (*Record, error) {
	id, ep, err := parse(key)
	if err != nil {
		return nil, err
	}
	cur := ""
	if IsSigned(key) {
		if cur, err = s.currentEpoch(ctx); err != nil {
			return nil, fmt.Errorf("apikey: look up key %s: %w", id, err)
		}
		if err := checkEpoch(id, ep, cur); err != nil {
			return nil, err
		}
	}
	h := s.hash.sum(key)
	c := s.cache
	if c == nil || !s.sub.fresh() {
		rec, err := s.fetchIn(ctx, h, id, cur)
		if err != nil {
			return nil, err
		}
		return verdict(rec, id, s.now())
	}
	mono := time.Now()
	if rec, ok := c.get(h, mono); ok {
		return verdict(rec, id, s.now())
	}
	gen := c.generation()
	rec, err := s.fetchIn(ctx, h, id, cur)
	if err != nil {
		return nil, err
	}
	c.put(h, rec, gen, mono)
	return verdict(rec, id, s.now())
}

// fetchIn is fetch with the record's Epoch: cur, or when cur is "" the
// current epoch (currentEpoch; "" when it cannot be read). Either was read
// before the record, so a record is never tagged with an epoch that began
// after it was read: data lost in between is gone from the read too.
func (s *RedisStore) fetchIn(ctx context.Context, h, id, cur string) (*Record, error) {
	if cur == "" {
		cur, _ = s.currentEpoch(ctx) // best effort: a record without an epoch is only not learned
	}
	rec, err := s.fetch(ctx, h, id)
	if rec != nil {
		rec.Epoch = cur
	}
	return rec, err
}

// fetch reads the record stored under h; nil when there is none.
func (s *RedisStore) fetch(ctx context.Context, h, id string) (*Record, error) {
	fields, err := s.hgetall(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("apikey: look up key %s: %w", id, err)
	}
	rec, err := decodeRecord(fields)
	if err != nil {
		return nil, fmt.Errorf("apikey: look up key %s: %w", id, err)
	}
	if rec != nil && rec.ID != id {
		return nil, fmt.Errorf("apikey: look up key %s: the record found is that of key %s", id, rec.ID)
	}
	return rec, nil
}

// hgetall reads the record hash under h through the breaker, within
// lookupContext's budget. Its errors wrap ErrUnavailable, except when
// ctx itself ended.
func (s *RedisStore) hgetall(ctx context.Context, h string) (map[string]string, error) {
	tk, err := s.guard.Allow()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	lctx, cancel, ok := lookupContext(ctx, s.timeout)
	defer cancel()
	if !ok {
		tk.Ignore()
		return nil, fmt.Errorf("%w: no time left for a lookup", ErrUnavailable)
	}
	fields, err := s.client.HGetAll(lctx, recordKey(h)).Result()
	switch {
	case err == nil:
		tk.Success()
		return fields, nil
	case ctx.Err() != nil: // the caller gave up: nothing learnt about Redis
		tk.Ignore()
		return nil, err
	}
	tk.Failure(err)
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Revoke implements Store: it marks the record revoked, drops it from this
// store's cache and announces the revocation on RevokedChannel. If the
// announcement fails, the key is revoked in Redis but other replicas may
// serve it from their caches for up to CacheTTL: Revoke returns the error
// so the caller retries (Revoke is idempotent). A signed key is revoked in
// the exceptions table first: should the record's update fail after it,
// Envoy already refuses the key, and the retry completes the revocation.
func (s *RedisStore) Revoke(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("%w (id %q)", ErrNotFound, id)
	}
	h, err := s.client.Get(ctx, idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("apikey: revoke key %s: %w", id, err)
	}
	if err := s.revokeException(ctx, h, id); err != nil {
		return err
	}
	n, err := revokeScript.Run(ctx, s.client, []string{recordKey(h)}, fieldRevoked).Int()
	if err != nil {
		return fmt.Errorf("apikey: revoke key %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w (id %s)", ErrNotFound, id)
	}
	if s.cache != nil {
		s.cache.invalidate(h)
	}
	if err := s.client.Publish(ctx, RevokedChannel, h).Err(); err != nil {
		return fmt.Errorf("apikey: key %s revoked, but announcing it failed: %w", id, err)
	}
	return nil
}

// revokeException records the revocation of the key stored under h in the
// exceptions table (signed or opaque: see Exceptions).
func (s *RedisStore) revokeException(ctx context.Context, h, id string) error {
	fields, err := s.client.HGetAll(ctx, recordKey(h)).Result()
	if err != nil {
		return fmt.Errorf("apikey: revoke key %s: %w", id, err)
	}
	rec, err := decodeRecord(fields)
	if err != nil {
		return fmt.Errorf("apikey: revoke key %s: %w", id, err)
	}
	if rec == nil || rec.ID != id {
		return nil // no record: ErrNotFound below
	}
	rec.Revoked = true
	return s.putException(ctx, *rec, 0)
}

// List implements Store, in three round trips: the consumer's ids, their
// HMACs, their records. Ids whose record is missing (a Create that did not
// finish) are skipped.
func (s *RedisStore) List(ctx context.Context, consumer string) ([]Record, error) {
	ids, err := s.client.SMembers(ctx, consumerKey(consumer)).Result()
	if err != nil {
		return nil, fmt.Errorf("apikey: list keys: %w", err)
	}
	if len(ids) == 0 {
		return []Record{}, nil
	}
	hashes, err := s.hashesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	recs, err := s.recordsOf(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(recs))
	for _, r := range recs {
		if r.Consumer == consumer {
			out = append(out, r)
		}
	}
	sortRecords(out)
	return out, nil
}

// hashesOf returns the HMACs of the keys with the given ids, skipping
// unknown ids.
func (s *RedisStore) hashesOf(ctx context.Context, ids []string) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, idKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("apikey: list keys: %w", err)
	}
	hashes := make([]string, 0, len(ids))
	for _, c := range cmds {
		h, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("apikey: list keys: %w", err)
		default:
			hashes = append(hashes, h)
		}
	}
	return hashes, nil
}

// recordsOf returns the records stored under hashes, skipping missing ones.
func (s *RedisStore) recordsOf(ctx context.Context, hashes []string) ([]Record, error) {
	cmds := make([]*redis.MapStringStringCmd, len(hashes))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HGetAll(ctx, recordKey(h))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apikey: list keys: %w", err)
	}
	recs := make([]Record, 0, len(hashes))
	for _, c := range cmds {
		rec, err := decodeRecord(c.Val())
		if err != nil {
			return nil, fmt.Errorf("apikey: list keys: %w", err)
		}
		if rec != nil {
			recs = append(recs, *rec)
		}
	}
	return recs, nil
}
