package apikey

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// revocationBound is how fast a revocation must reach every replica.
const revocationBound = time.Second

func TestNewRedisStoreRejects(t *testing.T) {
	client, _ := newRedisClient(t, "127.0.0.1:1")
	tests := []struct {
		name   string
		client redis.UniversalClient
		pepper []byte
	}{
		{"nil client", nil, testPepper},
		{"no pepper", client, nil},
		{"short pepper", client, testPepper[:MinPepperLen-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRedisStore(testContext(t), tt.client, tt.pepper, RedisOptions{}); err == nil {
				t.Error("NewRedisStore succeeded, want an error")
			}
		})
	}
}

func TestRedisLookupCommandCounts(t *testing.T) {
	addr := harness.StartRedis(t)
	client, hook := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{})
	waitFresh(t, s)
	key, _ := mustCreate(t, s, Record{Consumer: "c"})
	unknown := "tg_27rPErmv_CMeFbET4B3Dwza7yUxQawqTycmfUq0On_3WwyLt"
	tests := []struct {
		name     string
		key      string
		wantErr  error
		commands int64
	}{
		{"malformed: empty", "", ErrMalformed, 0},
		{"malformed: bad checksum", key[:keyLen-6] + "000000", ErrMalformed, 0},
		{"malformed: garbage", strings.Repeat("x", 4096), ErrMalformed, 0},
		{"first lookup: one HGETALL", key, nil, 1},
		{"second lookup: cached", key, nil, 0},
		{"unknown key: one HGETALL", unknown, ErrNotFound, 1},
		{"unknown key again: cached", unknown, ErrNotFound, 0},
	}
	for _, tt := range tests {
		before := hook.count()
		_, err := s.Lookup(testContext(t), tt.key)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Lookup = %v, want %v", tt.name, err, tt.wantErr)
		}
		if got := hook.count() - before; got != tt.commands {
			t.Errorf("%s: %d Redis commands, want %d", tt.name, got, tt.commands)
		}
	}
}

func TestRedisLayout(t *testing.T) {
	addr := harness.StartRedis(t)
	client, _ := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{})
	key, rec := mustCreate(t, s, Record{Consumer: "acme", Roles: []string{"a", "b"}, Tier: "gold"})
	ctx := testContext(t)
	h := s.hash.sum(key)
	if got := client.Get(ctx, "tollgate:apikey:id:"+rec.ID).Val(); got != h {
		t.Errorf("id key holds %q, want the HMAC %q", got, h)
	}
	if got := client.SMembers(ctx, "tollgate:consumer:acme:keys").Val(); len(got) != 1 || got[0] != rec.ID {
		t.Errorf("consumer set = %v, want [%s]", got, rec.ID)
	}
	fields := client.HGetAll(ctx, "tollgate:apikey:"+h).Val()
	want := map[string]string{"id": rec.ID, "consumer": "acme", "tenant": "", "tier": "gold", "roles": `["a","b"]`,
		"created_at": rec.CreatedAt.Format(time.RFC3339Nano), "expires_at": "", "revoked": "0"}
	if len(fields) != len(want) {
		t.Errorf("record hash = %v, want %v", fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("record field %s = %q, want %q", k, fields[k], v)
		}
	}
	assertSecretNotStored(t, client, key)
}

// assertSecretNotStored scans every key and value for the key's secret.
func assertSecretNotStored(t *testing.T, client *redis.Client, key string) {
	t.Helper()
	ctx := testContext(t)
	secret := key[secretStart:secretEnd]
	for _, k := range client.Keys(ctx, "*").Val() {
		dump := k + " " + client.Dump(ctx, k).Val()
		if strings.Contains(dump, secret) {
			t.Errorf("Redis key %q holds the key's secret", k)
		}
	}
}

func TestRedisCorruptRecordIsAnError(t *testing.T) {
	addr := harness.StartRedis(t)
	client, _ := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{})
	waitFresh(t, s)
	key, rec := mustCreate(t, s, Record{Consumer: "c"})
	other, _ := mustCreate(t, s, Record{Consumer: "c"})
	ctx := testContext(t)
	tests := []struct {
		name  string
		field string
		value string
	}{
		{"record of another key", "id", other[idStart:idEnd]},
		{"bad roles", "roles", "[not json"},
		{"bad time", "created_at", "yesterday"},
	}
	for _, tt := range tests {
		if err := client.HSet(ctx, recordKey(s.hash.sum(key)), tt.field, tt.value).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Lookup(ctx, key)
		if err == nil || isVerdict(err) {
			t.Errorf("%s: Lookup = %v, want a store error", tt.name, err)
		}
		if err := client.HSet(ctx, recordKey(s.hash.sum(key)), encodeFields(t, rec)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func encodeFields(t *testing.T, rec Record) []any {
	t.Helper()
	f, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// isVerdict reports an answer about the key, as opposed to a store failure.
func isVerdict(err error) bool {
	for _, v := range []error{ErrMalformed, ErrNotFound, ErrExpired, ErrRevoked} {
		if errors.Is(err, v) {
			return true
		}
	}
	return false
}

// cachedReplica returns a store on its own client that has key cached,
// and the hook counting that client's commands.
func cachedReplica(t *testing.T, addr, key string) (*RedisStore, *countingHook) {
	t.Helper()
	client, hook := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{})
	waitFresh(t, s)
	for range 2 {
		if _, err := s.Lookup(testContext(t), key); err != nil {
			t.Fatalf("replica Lookup: %v", err)
		}
	}
	before := hook.count()
	if _, err := s.Lookup(testContext(t), key); err != nil {
		t.Fatalf("replica Lookup: %v", err)
	}
	if hook.count() != before {
		t.Fatal("the replica did not cache the key")
	}
	return s, hook
}

// waitVerdict polls s.Lookup(key) until it fails as want says. Every
// lookup that starts more than bound after from must: waitVerdict returns
// when the first lookup that did so started, counted from from.
func waitVerdict(t *testing.T, s *RedisStore, key string, want func(error) bool, from time.Time, bound time.Duration) time.Duration {
	t.Helper()
	for {
		began := time.Since(from)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := s.Lookup(ctx, key)
		cancel()
		if want(err) {
			return began
		}
		if began > bound {
			t.Fatalf("a lookup started %v after the change returned %v", began, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isRevoked(err error) bool { return errors.Is(err, ErrRevoked) }

func TestRedisRevocationReachesOtherReplicas(t *testing.T) {
	addr := harness.StartRedis(t)
	clientA, _ := newRedisClient(t, addr)
	a := newRedisStore(t, clientA, testPepper, RedisOptions{})
	key, rec := mustCreate(t, a, Record{Consumer: "c"})
	b, _ := cachedReplica(t, addr, key)
	c, _ := cachedReplica(t, addr, key)
	revoked := time.Now()
	if err := a.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for name, s := range map[string]*RedisStore{"B": b, "C": c} {
		d := waitVerdict(t, s, key, isRevoked, revoked, revocationBound)
		t.Logf("replica %s saw the revocation after %v", name, d)
	}
}

// TestRedisLostMessageIsCaughtByFlushOnReconnect: a revocation whose
// message a replica never receives (simulated by writing the record
// without publishing) still takes effect, because the replica flushes its
// cache when its subscription reconnects.
func TestRedisLostMessageIsCaughtByFlushOnReconnect(t *testing.T) {
	addr := harness.StartRedis(t)
	admin, _ := newRedisClient(t, addr)
	a := newRedisStore(t, admin, testPepper, RedisOptions{CacheSize: -1})
	key, _ := mustCreate(t, a, Record{Consumer: "c"})
	b, _ := cachedReplica(t, addr, key)
	ctx := testContext(t)
	if err := admin.HSet(ctx, recordKey(a.hash.sum(key)), fieldRevoked, "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lookup(ctx, key); err != nil {
		t.Fatalf("the replica should still serve its cached entry: %v", err)
	}
	killed := time.Now()
	if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}
	d := waitVerdict(t, b, key, isRevoked, killed, revocationBound)
	t.Logf("the replica saw the revocation %v after its subscription was killed", d)
}

// TestRedisSilentPartitionStopsTrustingCache: when the subscription goes
// silent without an error (traffic held, connections open), the replica
// stops serving from its cache within MaxStaleness: it neither accepts the
// key it cached nor waits for TCP to notice.
func TestRedisSilentPartitionStopsTrustingCache(t *testing.T) {
	addr := harness.StartRedis(t)
	admin, _ := newRedisClient(t, addr)
	a := newRedisStore(t, admin, testPepper, RedisOptions{})
	key, rec := mustCreate(t, a, Record{Consumer: "c"})
	p := startProxy(t, addr)
	b, _ := cachedReplica(t, p.addr(), key)
	frozen := time.Now()
	p.set(true, false)
	if err := a.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatal(err)
	}
	notOK := func(err error) bool { return err != nil }
	d := waitVerdict(t, b, key, notOK, frozen, revocationBound)
	t.Logf("the partitioned replica stopped accepting the key after %v", d)
	p.set(false, false)
	waitVerdict(t, b, key, isRevoked, time.Now(), 10*time.Second)
}

// TestRedisDownFailsClosedAndRecovers: with Redis unreachable, lookups
// fail with a store error (the caller denies), cached keys included; a
// revocation made meanwhile is honoured once the replica is back.
func TestRedisDownFailsClosedAndRecovers(t *testing.T) {
	addr := harness.StartRedis(t)
	admin, _ := newRedisClient(t, addr)
	a := newRedisStore(t, admin, testPepper, RedisOptions{})
	key, rec := mustCreate(t, a, Record{Consumer: "c"})
	keep, _ := mustCreate(t, a, Record{Consumer: "c"})
	p := startProxy(t, addr)
	b, _ := cachedReplica(t, p.addr(), key)
	cut := time.Now()
	p.set(false, true)
	storeError := func(err error) bool { return err != nil && !isVerdict(err) }
	d := waitVerdict(t, b, key, storeError, cut, revocationBound)
	t.Logf("lookups failed %v after Redis went away", d)
	if err := a.Revoke(testContext(t), rec.ID); err != nil { // b misses the message
		t.Fatal(err)
	}
	p.set(false, false)
	waitVerdict(t, b, key, isRevoked, time.Now(), 10*time.Second)
	if _, err := b.Lookup(testContext(t), keep); err != nil {
		t.Errorf("Lookup after recovery: %v", err)
	}
	waitFresh(t, b)
}

func TestRedisCloseStopsCaching(t *testing.T) {
	addr := harness.StartRedis(t)
	client, hook := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{})
	waitFresh(t, s)
	key, _ := mustCreate(t, s, Record{Consumer: "c"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		before := hook.count()
		if _, err := s.Lookup(testContext(t), key); err != nil {
			t.Fatalf("Lookup after Close: %v", err)
		}
		if hook.count()-before != 1 {
			t.Errorf("Lookup after Close sent %d commands, want 1 (no cache)", hook.count()-before)
		}
	}
}
