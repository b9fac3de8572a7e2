package apikey

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestRedisEpochCreationRace: replicas (each its own store and client)
// that find no epoch at once — at the first key, or after the store lost
// its data — all end up with the one epoch stored, whichever path creates
// it (Create, or the exceptions watcher's read), round after round.
func TestRedisEpochCreationRace(t *testing.T) {
	addr := harness.StartRedis(t)
	const replicas, rounds = 8, 20
	stores := make([]*RedisStore, replicas)
	for i := range stores {
		c, _ := newRedisClient(t, addr)
		stores[i] = newRedisStore(t, c, testPepper, RedisOptions{Signer: mustSigner(t, testPepper)})
	}
	admin, _ := newRedisClient(t, addr)
	seen := map[string]bool{}
	for round := range rounds {
		if err := admin.FlushAll(testContext(t)).Err(); err != nil {
			t.Fatal(err)
		}
		got := make([]string, replicas)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range stores {
			wg.Go(func() {
				<-start
				got[i] = raceEpoch(t, s, i%2 == 0)
			})
		}
		close(start)
		wg.Wait()
		stored, err := admin.Get(testContext(t), excEpochKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, ep := range got {
			if ep != stored {
				t.Fatalf("round %d: replica %d uses epoch %q, the store holds %q (all: %q)", round, i, ep, stored, got)
			}
		}
		if seen[stored] || len(stored) != EpochLen {
			t.Fatalf("round %d: epoch %q reused or not %d characters", round, stored, EpochLen)
		}
		seen[stored] = true
	}
}

// raceEpoch returns the epoch s settles on: that of a key it creates
// (viaCreate), else that of the exceptions table it reads.
func raceEpoch(t *testing.T, s *RedisStore, viaCreate bool) string {
	if viaCreate {
		key, _, err := s.Create(context.Background(), Record{Consumer: "race"})
		if err != nil {
			t.Error(err)
			return ""
		}
		_, ep, err := parse(key)
		if err != nil {
			t.Error(err)
		}
		return ep
	}
	exc, err := s.Exceptions(context.Background())
	if err != nil {
		t.Error(err)
	}
	return exc.Epoch
}

// TestRedisEpochLoss: when the store loses its data, the ext_authz path
// (Lookup) refuses every signed key minted before as unknown — a revoked
// one and an unrevoked one, cached or not, even when the records survive
// and only the epoch went — within epochCheckInterval; the exceptions
// table comes back with a new epoch, and a key minted then works.
func TestRedisEpochLoss(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(t *testing.T, s *RedisStore)
	}{
		{"FLUSHALL", func(t *testing.T, s *RedisStore) { must(t, s.client.FlushAll(testContext(t)).Err()) }},
		{"epoch alone deleted", func(t *testing.T, s *RedisStore) { must(t, s.client.Del(testContext(t), excEpochKey).Err()) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newRedisClient(t, harness.StartRedis(t))
			s := newRedisStore(t, c, testPepper, RedisOptions{Signer: mustSigner(t, testPepper)})
			waitFresh(t, s)
			revoked, a := mustCreate(t, s, Record{Consumer: "a"})
			kept, _ := mustCreate(t, s, Record{Consumer: "b"})
			opaque, _ := mustCreate(t, s, Record{Consumer: "c", Format: FormatOpaque})
			must(t, s.Revoke(testContext(t), a.ID))
			before, err := s.Exceptions(testContext(t))
			must(t, err)
			if _, err := s.Lookup(testContext(t), kept); err != nil { // cached now
				t.Fatalf("before the loss: %v", err)
			}
			tt.lose(t, s)
			time.Sleep(epochCheckInterval)
			for name, key := range map[string]string{"revoked": revoked, "unrevoked": kept} {
				if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s signed key after the loss: %v, want ErrNotFound", name, err)
				}
			}
			// Opaque keys do not depend on the epoch: their record decides.
			if _, err := s.Lookup(testContext(t), opaque); tt.name != "FLUSHALL" && err != nil {
				t.Errorf("opaque key whose record survived: %v", err)
			}
			after, err := s.Exceptions(testContext(t))
			must(t, err)
			if after.Epoch == "" || after.Epoch == before.Epoch {
				t.Fatalf("epoch after the loss %q, before %q: want a new one", after.Epoch, before.Epoch)
			}
			fresh, _ := mustCreate(t, s, Record{Consumer: "d"})
			if _, err := s.Lookup(testContext(t), fresh); err != nil {
				t.Errorf("a key minted after the loss: %v", err)
			}
		})
	}
}

// TestMemoryStoreRefusesForeignEpoch: a memory store never loses its
// records, but it too refuses a signed key of another epoch (as unknown).
func TestMemoryStoreRefusesForeignEpoch(t *testing.T) {
	sig := mustSigner(t, testPepper)
	s := NewMemoryStoreWithSigner(testPepper, sig)
	key, rec := mustCreate(t, s, Record{Consumer: "a"})
	if _, err := s.Lookup(testContext(t), key); err != nil {
		t.Fatal(err)
	}
	exc, err := s.Exceptions(testContext(t))
	if err != nil || exc.Epoch != s.epoch || len(exc.Epoch) != EpochLen {
		t.Fatalf("Exceptions epoch %q, %v; store's %q", exc.Epoch, err, s.epoch)
	}
	for _, ep := range []string{"", "OtherEpoch01"} {
		foreign, err := sig.sign(rec, ep)
		must(t, err)
		if _, err := s.Lookup(testContext(t), foreign); !errors.Is(err, ErrNotFound) {
			t.Errorf("key of epoch %q: %v, want ErrNotFound", ep, err)
		}
	}
}

// TestWatchExceptionsReloadsOnEpochChange: a new epoch at an unchanged
// version (a flushed store whose table never changed: version 0 before
// and after) reloads and reports the table.
func TestWatchExceptionsReloadsOnEpochChange(t *testing.T) {
	src := &fakeSource{exc: Exceptions{Epoch: "first0000000"}}
	l := startWatch(t, src, 5*time.Millisecond, time.Second)
	l.waitView(t, "first epoch", func(v ExceptionsView) bool { return v.Fresh && v.Epoch == "first0000000" })
	src.set(func(f *fakeSource) { f.exc.Epoch = "second000000" })
	l.waitView(t, "second epoch", func(v ExceptionsView) bool { return v.Fresh && v.Epoch == "second000000" })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLookupCarriesEpoch: a record found by Lookup carries the key-store
// epoch it was read in — the memory store's; the Redis store's as last
// read within epochCheckInterval, else read by the lookup — and keeps it
// when served from the cache after the store lost its data (the Envoy
// module then refuses to learn it: extauthz.Local.Learn).
func TestLookupCarriesEpoch(t *testing.T) {
	mem := NewMemoryStore(testPepper)
	key, _, err := mem.Create(testContext(t), Record{Consumer: "a", Format: FormatOpaque})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := mem.Lookup(testContext(t), key); err != nil || rec.Epoch == "" || rec.Epoch != mustExceptions(t, mem).Epoch {
		t.Errorf("memory store: %+v, %v; want its epoch", rec, err)
	}
	c, _ := newRedisClient(t, harness.StartRedis(t))
	rs := newRedisStore(t, c, testPepper, RedisOptions{Now: newFakeClock().Now})
	waitFresh(t, rs) // the cache serves
	key, _, err = rs.Create(testContext(t), Record{Consumer: "a", Format: FormatOpaque})
	if err != nil {
		t.Fatal(err)
	}
	ep := mustExceptions(t, rs).Epoch // creates the epoch and reads it: as the watcher does
	if rec, err := rs.Lookup(testContext(t), key); err != nil || rec.Epoch != ep {
		t.Errorf("redis store, epoch just read: %+v, %v; want epoch %s", rec, err, ep)
	}
	if err := rs.client.FlushAll(testContext(t)).Err(); err != nil {
		t.Fatal(err)
	}
	if next := mustExceptions(t, rs).Epoch; next == ep {
		t.Fatalf("the epoch did not change with the data: %s", next)
	}
	if rec, err := rs.Lookup(testContext(t), key); err == nil && rec.Epoch != ep {
		t.Errorf("a record cached before the flush: epoch %q, want the old %s", rec.Epoch, ep)
	}
	time.Sleep(epochCheckInterval) // no watcher here: the lookup reads the epoch itself (ext_authz alone)
	other, _, err := rs.Create(testContext(t), Record{Consumer: "b", Format: FormatOpaque})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := rs.Lookup(testContext(t), other); err != nil || rec.Epoch == "" || rec.Epoch == ep {
		t.Errorf("epoch not read for %v: %+v, %v; want the new epoch, read by the lookup", epochCheckInterval, rec, err)
	}
}

func mustExceptions(t *testing.T, s ExceptionSource) Exceptions {
	t.Helper()
	x, err := s.Exceptions(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return x
}
