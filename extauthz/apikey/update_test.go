package apikey

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

func contractUpdate(t *testing.T, open backend) {
	clock := newFakeClock()
	s := open(t, testPepper, clock)
	// No expiry at creation: a signed key's could not be lifted to never.
	key, rec := mustCreate(t, s, Record{Consumer: t.Name(), Tier: "free", Roles: []string{"user"}})
	if _, err := s.Lookup(testContext(t), key); err != nil { // cache it
		t.Fatal(err)
	}
	pro, roles, never := "pro", []string{"admin", "user"}, time.Time{}
	want := rec
	want.Tier, want.Roles, want.ExpiresAt = pro, roles, never
	got, err := s.Update(testContext(t), rec.ID, Change{Tier: &pro, Roles: &roles, ExpiresAt: &never})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Update = %+v, %v; want %+v", got, err, want)
	}
	looked, err := s.Lookup(testContext(t), key)
	if err != nil || !reflect.DeepEqual(withoutEpoch(*looked), want) {
		t.Fatalf("Lookup after Update = %+v, %v; want %+v (the same key, changed)", looked, err, want)
	}
	soon := clock.Now().Add(time.Minute)
	if got, err := s.Update(testContext(t), rec.ID, Change{ExpiresAt: &soon}); err != nil || got.Tier != pro ||
		!got.ExpiresAt.Equal(expected(s, Record{ExpiresAt: soon}).ExpiresAt) {
		t.Fatalf("Update of the expiry alone = %+v, %v; want the tier kept and the new expiry", got, err)
	}
	clock.Advance(time.Minute)
	if _, err := s.Lookup(testContext(t), key); !errors.Is(err, ErrExpired) {
		t.Errorf("Lookup after the new expiry = %v, want ErrExpired", err)
	}
	past := rec.CreatedAt.Add(-time.Second)
	if _, err := s.Update(testContext(t), rec.ID, Change{ExpiresAt: &past}); err == nil {
		t.Error("Update to an expiry before creation succeeded")
	}
	if _, err := s.Update(testContext(t), "NoSuchId", Change{Tier: &pro}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of an unknown id = %v, want ErrNotFound", err)
	}
	if err := s.Revoke(testContext(t), rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(testContext(t), rec.ID, Change{Tier: &pro}); !errors.Is(err, ErrRevoked) {
		t.Errorf("Update of a revoked key = %v, want ErrRevoked", err)
	}
}

// TestRedisUpdateReachesOtherReplicas: replicas that cached a key see its
// new tier within the revocation bound (a second), through the same
// invalidation channel as revocations.
func TestRedisUpdateReachesOtherReplicas(t *testing.T) {
	addr := harness.StartRedis(t)
	clientA, _ := newRedisClient(t, addr)
	a := newRedisStore(t, clientA, testPepper, RedisOptions{})
	key, rec := mustCreate(t, a, Record{Consumer: "c", Tier: "free"})
	b, _ := cachedReplica(t, addr, key)
	c, _ := cachedReplica(t, addr, key)
	pro := "pro"
	updated := time.Now()
	if _, err := a.Update(testContext(t), rec.ID, Change{Tier: &pro}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	for name, s := range map[string]*RedisStore{"B": b, "C": c} {
		for {
			began := time.Since(updated)
			got, err := s.Lookup(testContext(t), key)
			if err == nil && got.Tier == pro {
				t.Logf("replica %s saw the new tier after %v", name, began)
				break
			}
			if began > revocationBound {
				t.Fatalf("replica %s: a lookup %v after the update = %+v, %v; want tier pro", name, began, got, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
