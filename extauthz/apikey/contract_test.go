package apikey

import (
	"crypto/rand"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// backend opens stores; stores a backend opens share their data when the
// backend can (Redis), whatever their pepper.
type backend func(t *testing.T, pepper []byte, clock *fakeClock) Store

// testSigner returns the signer of pepper when signed, else nil.
func testSigner(t testing.TB, pepper []byte, signed bool) *Signer {
	t.Helper()
	if !signed {
		return nil
	}
	sig, err := NewSigner(pepper)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return sig
}

func memoryBackend(signed bool) backend {
	return func(t *testing.T, pepper []byte, clock *fakeClock) Store {
		s := NewMemoryStoreWithSigner(pepper, testSigner(t, pepper, signed))
		s.now = clock.Now
		return s
	}
}

func redisBackend(addr string, cacheSize int, signed bool) backend {
	return func(t *testing.T, pepper []byte, clock *fakeClock) Store {
		c, _ := newRedisClient(t, addr)
		s := newRedisStore(t, c, pepper, RedisOptions{Now: clock.Now, CacheSize: cacheSize,
			Signer: testSigner(t, pepper, signed)})
		if cacheSize >= 0 {
			waitFresh(t, s) // so the suite exercises the cache
		}
		return s
	}
}

func TestMemoryStoreContract(t *testing.T) { testContract(t, memoryBackend(false)) }

func TestMemoryStoreContractSigned(t *testing.T) { testContract(t, memoryBackend(true)) }

func TestRedisStoreContract(t *testing.T) {
	testContract(t, redisBackend(harness.StartRedis(t), 0, false))
}

func TestRedisStoreContractSigned(t *testing.T) {
	testContract(t, redisBackend(harness.StartRedis(t), 0, true))
}

func TestRedisStoreContractWithoutCache(t *testing.T) {
	testContract(t, redisBackend(harness.StartRedis(t), -1, false))
}

// expected returns rec as s stores it: a signed key's record has whole
// seconds and carries its token's expiry.
func expected(s Store, rec Record) Record {
	if SignerOf(s) == nil {
		rec.Format = FormatOpaque
		return rec
	}
	rec.Format = FormatSigned
	rec.CreatedAt = rec.CreatedAt.Truncate(time.Second)
	rec.ExpiresAt = rec.ExpiresAt.Truncate(time.Second)
	rec.TokenExpiresAt = rec.ExpiresAt
	return rec
}

// testContract runs the behaviour every Store must have.
func testContract(t *testing.T, open backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, open backend)
	}{
		{"create and lookup", contractCreateLookup},
		{"unknown key with a valid checksum", contractUnknownKey},
		{"malformed keys", contractMalformed},
		{"expiry", contractExpiry},
		{"revoke", contractRevoke},
		{"update", contractUpdate}, // update_test.go
		{"list by consumer", contractList},
		{"other pepper", contractOtherPepper},
		{"invalid records", contractInvalidRecords},
		{"concurrent use", contractConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

func contractCreateLookup(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	in := Record{ID: "ignored", Consumer: t.Name(), Tenant: "acme", Tier: "gold", Roles: []string{"admin", "reader"},
		ExpiresAt: clock.Now().Add(time.Hour), Revoked: true}
	key, stored, err := s.Create(testContext(t), in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	id, err := Parse(key)
	if err != nil {
		t.Fatalf("Create returned a key that does not parse: %v", err)
	}
	want := expected(s, Record{ID: id, Consumer: t.Name(), Tenant: "acme", Tier: "gold", Roles: []string{"admin", "reader"},
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
	if !reflect.DeepEqual(stored, want) {
		t.Fatalf("Create stored %+v, want %+v", stored, want)
	}
	for i := range 3 { // the second and third lookups may come from a cache
		got, err := s.Lookup(testContext(t), key)
		if err != nil {
			t.Fatalf("Lookup #%d: %v", i, err)
		}
		if !reflect.DeepEqual(withoutEpoch(*got), want) {
			t.Fatalf("Lookup #%d = %+v, want %+v", i, *got, want)
		}
		got.Roles[0] = "mutated by the caller"
	}
}

func contractUnknownKey(t *testing.T, open backend) {
	s := open(t, testPepper, newFakeClock())
	mustCreate(t, s, Record{Consumer: t.Name()})
	other, _, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := s.Lookup(testContext(t), other); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup #%d of an unknown key: %v, want ErrNotFound", i, err)
		}
	}
}

func contractMalformed(t *testing.T, open backend) {
	s := open(t, testPepper, newFakeClock())
	key, _ := mustCreate(t, s, Record{Consumer: t.Name()})
	for _, bad := range []string{"", "tg_", "tg.", key[:len(key)-1], key + "x", key[:20] + "!" + key[21:],
		key[:keyLen-6] + "000000", "Bearer " + key} {
		if _, err := s.Lookup(testContext(t), bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Lookup(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func contractExpiry(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	key, _ := mustCreate(t, s, Record{Consumer: t.Name(), ExpiresAt: clock.Now().Add(time.Hour)})
	forever, _ := mustCreate(t, s, Record{Consumer: t.Name()})
	if _, err := s.Lookup(testContext(t), key); err != nil {
		t.Fatalf("Lookup before expiry: %v", err)
	}
	clock.Advance(time.Hour)
	if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrExpired) {
		t.Errorf("Lookup at expiry = %v, want ErrExpired", err)
	}
	clock.Advance(100 * 365 * 24 * time.Hour)
	if _, err := s.Lookup(testContext(t), forever); err != nil {
		t.Errorf("Lookup of a key without expiry: %v", err)
	}
}

func contractRevoke(t *testing.T, open backend) {
	s := open(t, testPepper, newFakeClock())
	key, rec := mustCreate(t, s, Record{Consumer: t.Name()})
	keep, _ := mustCreate(t, s, Record{Consumer: t.Name()})
	if _, err := s.Lookup(testContext(t), key); err != nil { // cache it
		t.Fatalf("Lookup before revoke: %v", err)
	}
	if err := s.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrRevoked) {
		t.Errorf("Lookup after revoke = %v, want ErrRevoked", err)
	}
	if _, err := s.Lookup(testContext(t), keep); err != nil {
		t.Errorf("Lookup of another key after revoke: %v", err)
	}
	if err := s.Revoke(testContext(t), rec.ID); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
	for _, id := range []string{"NoSuchId", "", "not an id", "x:y"} {
		if err := s.Revoke(testContext(t), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func contractList(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	alice, bob := t.Name()+"/alice", t.Name()+"/bob"
	_, a1 := mustCreate(t, s, Record{Consumer: alice, Roles: []string{"r"}})
	clock.Advance(time.Second)
	_, a2 := mustCreate(t, s, Record{Consumer: alice, Tier: "free"})
	_, b1 := mustCreate(t, s, Record{Consumer: bob})
	if err := s.Revoke(testContext(t), a1.ID); err != nil {
		t.Fatal(err)
	}
	a1.Revoked = true
	tests := []struct {
		consumer string
		want     []Record
	}{
		{alice, []Record{a1, a2}},
		{bob, []Record{b1}},
		{t.Name() + "/nobody", []Record{}},
	}
	for _, tt := range tests {
		got, err := s.List(testContext(t), tt.consumer)
		if err != nil {
			t.Fatalf("List(%s): %v", tt.consumer, err)
		}
		if got == nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("List(%s) = %+v, want %+v", tt.consumer, got, tt.want)
		}
	}
}

func contractOtherPepper(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	key, _ := mustCreate(t, s, Record{Consumer: t.Name()})
	other := open(t, otherPepper, clock)
	if _, err := other.Lookup(testContext(t), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup with another pepper = %v, want ErrNotFound", err)
	}
}

func contractInvalidRecords(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	tests := []struct {
		name string
		rec  Record
	}{
		{"no consumer", Record{Tier: "gold"}},
		{"blank consumer", Record{Consumer: "  "}},
		{"expires at creation", Record{Consumer: t.Name(), ExpiresAt: clock.Now()}},
		{"expires before creation", Record{Consumer: t.Name(), CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(-time.Minute)}},
	}
	for _, tt := range tests {
		if key, _, err := s.Create(testContext(t), tt.rec); err == nil || key != "" {
			t.Errorf("%s: Create = %q, %v; want an error", tt.name, key, err)
		}
	}
}

func contractConcurrent(t *testing.T, open backend) {
	s := open(t, testPepper, newFakeClock())
	key, rec := mustCreate(t, s, Record{Consumer: t.Name(), Roles: []string{"a"}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := s.Lookup(testContext(t), key)
				if err == nil {
					got.Roles = append(got.Roles[:0], "x")
				} else if !errors.Is(err, ErrRevoked) {
					t.Errorf("Lookup: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if err := s.Revoke(testContext(t), rec.ID); err != nil {
			t.Errorf("Revoke: %v", err)
		}
	})
	wg.Wait()
	if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrRevoked) {
		t.Errorf("Lookup after concurrent revoke = %v, want ErrRevoked", err)
	}
}

// withoutEpoch is r without the epoch a Lookup tags it with
// (TestLookupCarriesEpoch checks that).
func withoutEpoch(r Record) Record {
	r.Epoch = ""
	return r
}
