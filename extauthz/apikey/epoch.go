package apikey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key-store epoch.
//
// The epoch is a random id stored next to the key records; every signed
// key carries the epoch current when it was minted (claim ep), and a
// signed key is accepted only while its epoch is the store's current one.
// When the store loses its data (FLUSHALL, a Redis restarted without
// persistence), the records and the exceptions table go, and with them
// every revocation: the epoch goes too, the next reader creates a new one,
// and every key minted before is refused as unknown (401 unknown_key), on
// the native path and by ext_authz alike — exactly as ext_authz refuses
// an opaque key whose record is gone. A lost store never silently
// re-admits a revoked key.
const (
	// EpochLen is the length of an epoch: base62 characters (about 71
	// random bits: an epoch is no secret, it only has to differ from the
	// last one; short, since every signed key carries it).
	EpochLen = 12
	// epochCheckInterval bounds how long the ext_authz path (Lookup)
	// trusts the epoch it last read before reading it again (one GET).
	// It exceeds DefaultExceptionsInterval: where the exceptions watcher
	// runs on the same store (`tollgate serve`), its polls keep the epoch
	// current and Lookup seldom reads it itself.
	epochCheckInterval = 250 * time.Millisecond
	// excEpochKey holds the epoch; tagged {exceptions} so the table's
	// read script reads (or creates) it atomically with the table.
	excEpochKey = "tollgate:apikey:{exceptions}:epoch"
)

// ErrNoEpoch reports a store whose epoch cannot be read or created.
var ErrNoEpoch = errors.New("apikey: no key-store epoch")

// ensureEpochScript returns the epoch in KEYS[1], storing ARGV[1] there
// first when there is none. A script runs atomically, so of replicas
// racing to create the epoch exactly one stores its candidate and all
// return that one (SET NX and a re-read, in one step).
var ensureEpochScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`)

// newEpoch returns a fresh random epoch drawn from rnd.
func newEpoch(rnd io.Reader) (string, error) {
	b, err := randomBase62(rnd, EpochLen)
	if err != nil {
		return "", fmt.Errorf("apikey: new epoch: %w", err)
	}
	return string(b), nil
}

// ensureEpoch returns the store's epoch, creating it when absent.
func (s *RedisStore) ensureEpoch(ctx context.Context) (string, error) {
	cand, err := newEpoch(s.rand)
	if err != nil {
		return "", err
	}
	ep, err := ensureEpochScript.Run(ctx, s.client, []string{excEpochKey}, cand).Text()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoEpoch, err)
	}
	s.epochs.set(ep, time.Now())
	return ep, nil
}

// epochCache is the epoch a RedisStore last read, for Lookup.
type epochCache struct {
	mu  sync.Mutex
	val string    // "" when the store had none
	at  time.Time // when read (monotonic); zero: never
}

func (c *epochCache) set(val string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.at) {
		c.val, c.at = val, at
	}
}

// get returns the epoch read within epochCheckInterval before now.
func (c *epochCache) get(now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val, !c.at.IsZero() && now.Sub(c.at) < epochCheckInterval
}

// currentEpoch returns the store's epoch ("" when it has none) as read at
// most epochCheckInterval ago, reading it again (one GET) when older. It
// never creates an epoch: a store without one admits no signed key.
// Errors wrap ErrUnavailable.
func (s *RedisStore) currentEpoch(ctx context.Context) (string, error) {
	now := time.Now()
	if ep, ok := s.epochs.get(now); ok {
		return ep, nil
	}
	tk, err := s.guard.Allow()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	lctx, cancel, ok := lookupContext(ctx, s.timeout)
	defer cancel()
	if !ok {
		tk.Ignore()
		return "", fmt.Errorf("%w: no time left for a lookup", ErrUnavailable)
	}
	ep, err := s.client.Get(lctx, excEpochKey).Result()
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		tk.Success()
		s.epochs.set(ep, now)
		return ep, nil
	case ctx.Err() != nil:
		tk.Ignore()
		return "", err
	}
	tk.Failure(err)
	return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// checkEpoch refuses (ErrNotFound, as for a key whose record is gone) a
// signed key whose epoch ep is not the store's current one.
func checkEpoch(id, ep, current string) error {
	if current == "" || ep != current {
		return fmt.Errorf("%w (id %s: minted in another key-store epoch)", ErrNotFound, id)
	}
	return nil
}

// Stamp identifies a state of the exceptions table: its version and the
// store's epoch. The table must be reloaded when either changes.
type Stamp struct {
	Version int64
	Epoch   string // "" when the store has none (yet)
}

// Version implements ExceptionSource: one MGET of the version and the
// epoch.
func (s *RedisStore) Version(ctx context.Context) (Stamp, error) {
	vals, err := s.client.MGet(ctx, excVersionKey, excEpochKey).Result()
	if err != nil {
		return Stamp{}, fmt.Errorf("apikey: read exceptions version: %w", err)
	}
	var st Stamp
	if v, ok := vals[0].(string); ok {
		if st.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Stamp{}, fmt.Errorf("apikey: read exceptions version: %w", err)
		}
	}
	st.Epoch, _ = vals[1].(string)
	s.epochs.set(st.Epoch, time.Now())
	return st, nil
}
