package apikey

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

func TestMemoryStoreExceptions(t *testing.T) { testExceptions(t, memoryBackend(true)) }

func TestRedisStoreExceptions(t *testing.T) {
	testExceptions(t, redisBackend(harness.StartRedis(t), 0, true))
}

// testExceptions runs the exceptions behaviour of a signing store.
func testExceptions(t *testing.T, open backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, open backend)
	}{
		{"revoke and update record every key", exceptionsRecordChanges},
		{"an opaque key's entry pruned after its life", exceptionsPruneOpaque},
		{"expiry can only be shortened", exceptionsExpiryRefusal},
		{"pruned after the token's exp", exceptionsPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// readExceptions returns s's table and checks that Version agrees.
func readExceptions(t *testing.T, s Store) Exceptions {
	t.Helper()
	src := s.(ExceptionSource)
	exc, err := src.Exceptions(testContext(t))
	if err != nil {
		t.Fatalf("Exceptions: %v", err)
	}
	want := Stamp{Version: exc.Version, Epoch: exc.Epoch}
	if v, err := src.Version(testContext(t)); err != nil || v != want || v.Epoch == "" {
		t.Fatalf("Version = %+v, %v; Exceptions said %+v", v, err, want)
	}
	return exc
}

func exceptionsRecordChanges(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	start := readExceptions(t, s)
	_, k1 := mustCreate(t, s, Record{Consumer: "a", Tier: "free", Roles: []string{"user"}, ExpiresAt: clock.Now().Add(time.Hour)})
	_, k2 := mustCreate(t, s, Record{Consumer: "a"})
	_, opaque := mustCreate(t, s, Record{Consumer: "a", Format: FormatOpaque})
	if got := readExceptions(t, s); !reflect.DeepEqual(got, start) {
		t.Fatalf("after creating keys: %+v, want the table unchanged %+v", got, start)
	}
	pro, none := "pro", []string{}
	if _, err := s.Update(testContext(t), opaque.ID, Change{Tier: &pro}); err != nil {
		t.Fatal(err)
	}
	afterOpaque := readExceptions(t, s)
	wantOpaque := append(slices.Clone(start.Items), Exception{ID: opaque.ID, Tier: "pro"})
	if afterOpaque.Version <= start.Version || !reflect.DeepEqual(afterOpaque.Items, wantOpaque) {
		t.Fatalf("after an opaque key's update: %+v, want a later version than %d and %+v (the Envoy module's "+
			"learned records)", afterOpaque, start.Version, wantOpaque)
	}
	if err := s.Revoke(testContext(t), opaque.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(testContext(t), k1.ID, Change{Tier: &pro, Roles: &none}); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(testContext(t), k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(testContext(t), k2.ID, Change{Tier: &pro}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Update of a revoked key = %v, want ErrRevoked", err)
	}
	got := readExceptions(t, s)
	want := append(slices.Clone(start.Items), Exception{ID: k1.ID, Tier: "pro", ExpiresAt: k1.ExpiresAt},
		Exception{ID: k2.ID, Revoked: true}, Exception{ID: opaque.ID, Revoked: true, Tier: "pro"})
	sortExceptions(want)
	if got.Version <= afterOpaque.Version || !reflect.DeepEqual(got.Items, want) {
		t.Fatalf("Exceptions = %+v, want a later version than %d and %+v", got, afterOpaque.Version, want)
	}
	if err := s.Revoke(testContext(t), k1.ID); err != nil {
		t.Fatal(err)
	}
	before := readExceptions(t, s)
	if err := s.Revoke(testContext(t), k1.ID); err != nil {
		t.Fatal(err)
	}
	if after := readExceptions(t, s); after.Version != before.Version || !after.Items[slicesIndex(after.Items, k1.ID)].Revoked {
		t.Errorf("revoking twice changed the table: %+v → %+v", before, after)
	}
}

func slicesIndex(items []Exception, id string) int {
	for i, x := range items {
		if x.ID == id {
			return i
		}
	}
	return -1
}

func exceptionsExpiryRefusal(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	_, signed := mustCreate(t, s, Record{Consumer: "a", ExpiresAt: clock.Now().Add(time.Hour)})
	_, opaque := mustCreate(t, s, Record{Consumer: "a", Format: FormatOpaque, ExpiresAt: clock.Now().Add(time.Hour)})
	later, never, sooner := clock.Now().Add(2*time.Hour), time.Time{}, clock.Now().Add(30*time.Minute)
	before := readExceptions(t, s)
	for _, at := range []time.Time{later, never} {
		_, err := s.Update(testContext(t), signed.ID, Change{ExpiresAt: &at})
		if !errors.Is(err, ErrSignedExpiry) || !strings.Contains(err.Error(), "can only be shortened; create a new key") {
			t.Errorf("Update of a signed key's expiry to %v = %v, want ErrSignedExpiry", at, err)
		}
	}
	if got := readExceptions(t, s); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused update changed the exceptions: %+v → %+v", before, got)
	}
	if got, err := s.Update(testContext(t), signed.ID, Change{ExpiresAt: &sooner}); err != nil ||
		!got.ExpiresAt.Equal(sooner.Truncate(time.Second)) {
		t.Errorf("shortening a signed key = %+v, %v; want expiry %v (whole seconds)", got, err, sooner.Truncate(time.Second))
	}
	back := signed.TokenExpiresAt
	if _, err := s.Update(testContext(t), signed.ID, Change{ExpiresAt: &back}); err != nil {
		t.Errorf("lengthening a signed key back to its token's exp: %v", err)
	}
	for _, at := range []time.Time{later, never} {
		if got, err := s.Update(testContext(t), opaque.ID, Change{ExpiresAt: &at}); err != nil || !got.ExpiresAt.Equal(at) {
			t.Errorf("Update of an opaque key's expiry to %v = %+v, %v; want it changed", at, got, err)
		}
	}
}

func exceptionsPrune(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	_, short := mustCreate(t, s, Record{Consumer: "a", ExpiresAt: clock.Now().Add(time.Hour)})
	_, shortened := mustCreate(t, s, Record{Consumer: "a", ExpiresAt: clock.Now().Add(3 * time.Hour)})
	_, forever := mustCreate(t, s, Record{Consumer: "a"})
	soon := clock.Now().Add(time.Minute)
	if _, err := s.Update(testContext(t), shortened.ID, Change{ExpiresAt: &soon}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{short.ID, forever.ID} {
		if err := s.Revoke(testContext(t), id); err != nil {
			t.Fatal(err)
		}
	}
	mine := map[string]bool{short.ID: true, shortened.ID: true, forever.ID: true}
	ids := func(exc Exceptions) []string { // of this test's keys: a Redis backend shares its table
		var out []string
		for _, x := range exc.Items {
			if mine[x.ID] {
				out = append(out, x.ID)
			}
		}
		return out
	}
	all := []string{short.ID, shortened.ID, forever.ID}
	sortIDs(all)
	// Past the token's exp, but within the grace: Envoy's clock skew.
	clock.Advance(time.Hour + ExceptionPruneGrace - time.Second)
	v0 := readExceptions(t, s)
	if got := ids(v0); !reflect.DeepEqual(got, all) {
		t.Fatalf("within the grace: %v, want %v", got, all)
	}
	clock.Advance(2 * time.Second)
	v1 := readExceptions(t, s)
	want := []string{shortened.ID, forever.ID}
	sortIDs(want)
	if got := ids(v1); !reflect.DeepEqual(got, want) || v1.Version == v0.Version {
		t.Fatalf("past the token's exp + grace: %v (version %d → %d), want %v and a new version", got, v0.Version, v1.Version, want)
	}
	// The shortened key's entry stays until its token's exp: without it,
	// Envoy would accept the key again.
	clock.Advance(2 * time.Hour)
	if got := ids(readExceptions(t, s)); !reflect.DeepEqual(got, []string{forever.ID}) {
		t.Fatalf("past the shortened key's token exp + grace: %v, want only the key without exp", got)
	}
}

// exceptionsPruneOpaque: an opaque key's entry stays OpaqueExceptionLife
// after its last change (the Envoy module's learned records are older
// than LearnedRecordTTL), then goes; a later change restarts its life.
func exceptionsPruneOpaque(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	_, k := mustCreate(t, s, Record{Consumer: "a", Format: FormatOpaque})
	has := func() bool { return slicesIndex(readExceptions(t, s).Items, k.ID) >= 0 }
	pro, gold := "pro", "gold"
	if _, err := s.Update(testContext(t), k.ID, Change{Tier: &pro}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(OpaqueExceptionLife - time.Second)
	if !has() {
		t.Fatalf("within its life: the opaque key's entry is gone")
	}
	if _, err := s.Update(testContext(t), k.ID, Change{Tier: &gold}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(OpaqueExceptionLife - time.Second)
	if !has() {
		t.Fatalf("within its life after a second change: the entry is gone")
	}
	clock.Advance(2 * time.Second)
	if has() {
		t.Fatalf("past its life: the opaque key's entry is still there")
	}
}

func sortIDs(ids []string) {
	items := make([]Exception, len(ids))
	for i, id := range ids {
		items[i].ID = id
	}
	sortExceptions(items)
	for i := range items {
		ids[i] = items[i].ID
	}
}

// TestRedisExceptionsConcurrentUpdates: updates of different fields from
// several replicas leave the exception equal to the record, whatever the
// order in which their writes of the table land (record revisions).
func TestRedisExceptionsConcurrentUpdates(t *testing.T) {
	addr := harness.StartRedis(t)
	open := redisBackend(addr, -1, true)
	clock := newFakeClock()
	a, b := open(t, testPepper, clock), open(t, testPepper, clock)
	_, rec := mustCreate(t, a, Record{Consumer: "c"})
	var wg sync.WaitGroup
	for i := range 20 {
		tier, roles := fmt.Sprintf("t%d", i), []string{fmt.Sprintf("r%d", i)}
		wg.Go(func() {
			if _, err := a.Update(testContext(t), rec.ID, Change{Tier: &tier}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := b.Update(testContext(t), rec.ID, Change{Roles: &roles}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	recs, err := a.List(testContext(t), "c")
	if err != nil || len(recs) != 1 {
		t.Fatalf("List = %v, %v", recs, err)
	}
	want := []Exception{{ID: rec.ID, Tier: recs[0].Tier, Roles: recs[0].Roles}}
	if got := readExceptions(t, a).Items; !reflect.DeepEqual(got, want) {
		t.Fatalf("exception %+v, record %+v: they differ", got, recs[0])
	}
}

// TestRedisExceptionsLayout: the three keys share one hash tag (one
// Cluster slot, so one script may touch them all) and hold what the
// package documentation says.
func TestRedisExceptionsLayout(t *testing.T) {
	addr := harness.StartRedis(t)
	client, _ := newRedisClient(t, addr)
	s := newRedisStore(t, client, testPepper, RedisOptions{Signer: mustSigner(t, testPepper), CacheSize: -1})
	for _, k := range excKeys() {
		if !strings.Contains(k, "{exceptions}") || strings.Count(k, "{") != 1 {
			t.Errorf("key %q: want the single hash tag {exceptions}", k)
		}
	}
	_, rec := mustCreate(t, s, Record{Consumer: "c", ExpiresAt: time.Now().Add(time.Hour)})
	if err := s.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	entry, err := client.HGet(ctx, excHashKey, rec.ID).Result()
	if want := fmt.Sprintf(`{"revoked":true,"exp":%d,"rev":0}`, rec.ExpiresAt.Unix()); err != nil || entry != want {
		t.Errorf("entry = %s, %v; want %s", entry, err, want)
	}
	score, err := client.ZScore(ctx, excPruneKey, rec.ID).Result()
	if want := float64(rec.ExpiresAt.Add(ExceptionPruneGrace).Unix()); err != nil || score != want {
		t.Errorf("prune time = %v, %v; want %v", score, err, want)
	}
	if v, err := client.Get(ctx, excVersionKey).Int64(); err != nil || v != 1 {
		t.Errorf("version = %d, %v; want 1", v, err)
	}
	// Above the bound, the read script refuses before reading the entries.
	res, err := excReadScript.Run(ctx, client, excKeys(), time.Now().Unix(), 0, maxPrunePerCall).Slice()
	if err != nil || len(res) != 2 || res[0] != int64(-1) || res[1] != int64(1) {
		t.Errorf("read with bound 0 = %v, %v; want [-1 1]", res, err)
	}
}

// TestRedisClusterExceptions: on Redis Cluster, the scripts that touch the
// three exceptions keys run (one slot: no CROSSSLOT error), next to the
// untagged record keys in other slots.
func TestRedisClusterExceptions(t *testing.T) {
	cluster := harness.StartRedisCluster(t)
	addrs := make([]string, len(cluster.Nodes))
	for i, n := range cluster.Nodes {
		addrs[i] = n.Addr
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second})
	t.Cleanup(func() { _ = client.Close() })
	s := newRedisStore(t, client, testPepper, RedisOptions{Signer: mustSigner(t, testPepper), CacheSize: -1})
	key, rec := mustCreate(t, s, Record{Consumer: "c", Tier: "free", ExpiresAt: time.Now().Add(time.Hour)})
	pro := "pro"
	if _, err := s.Update(testContext(t), rec.ID, Change{Tier: &pro}); err != nil {
		t.Fatalf("Update on Cluster: %v", err)
	}
	if err := s.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatalf("Revoke on Cluster: %v", err)
	}
	got := readExceptions(t, s)
	if len(got.Items) != 1 || !got.Items[0].Revoked || got.Items[0].Tier != pro || got.Version != 2 {
		t.Fatalf("Exceptions on Cluster = %+v, want one revoked entry of tier pro at version 2", got)
	}
	if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrRevoked) {
		t.Errorf("Lookup after Revoke on Cluster = %v, want ErrRevoked", err)
	}
}
