package store

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/acme"
)

var (
	_ acme.KV      = (*RedisACME)(nil)
	_ acme.Locker  = (*RedisACME)(nil)
	_ acme.Watcher = (*RedisACME)(nil)
)

func TestRedisACMEEntries(t *testing.T) {
	r := openTestRedis(t, 0)
	a := r.ACME()
	if _, err := a.Get("certificates/x.pem"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get of a missing entry: %v, want fs.ErrNotExist", err)
	}
	if err := a.Put("certificates/x.pem", []byte("pem"), 0); err != nil {
		t.Fatal(err)
	}
	if b, err := a.Get("certificates/x.pem"); err != nil || string(b) != "pem" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	// Keys live under <prefix>{acme}:, apart from the policy's keys.
	ctx := context.Background()
	if n, _ := r.rdb.Exists(ctx, "t:{acme}:certificates/x.pem").Result(); n != 1 {
		t.Fatal("entry not stored under t:{acme}:")
	}
	if err := a.Put("challenges/tok", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := r.rdb.PTTL(ctx, "t:{acme}:challenges/tok").Result(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("challenge TTL %v, want (0, 1m]", ttl)
	}
	if err := a.Delete("challenges/tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get("challenges/tok"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Delete: %v", err)
	}
}

func TestRedisACMELock(t *testing.T) {
	r := openTestRedis(t, 0)
	a, b := r.ACME(), r.ACME()
	const ttl = 300 * time.Millisecond
	unlock, held, err := a.TryLock("locks/x", ttl)
	if err != nil || !held {
		t.Fatalf("first TryLock: held %v, %v", held, err)
	}
	if _, held, err := b.TryLock("locks/x", ttl); err != nil || held {
		t.Fatalf("second TryLock while held: held %v, %v; want refused", held, err)
	}
	// The holder renews the lock past its TTL.
	time.Sleep(3 * ttl)
	if _, held, _ := b.TryLock("locks/x", ttl); held {
		t.Fatal("the lock expired while its holder kept it")
	}
	unlock()
	unlock() // idempotent
	u2, held, err := b.TryLock("locks/x", ttl)
	if err != nil || !held {
		t.Fatalf("TryLock after unlock: held %v, %v", held, err)
	}
	u2()
	// A lock whose holder vanished (no renewal) expires after its TTL.
	if ok, _ := r.rdb.SetNX(context.Background(), "t:{acme}:locks/y", "crashed", ttl).Result(); !ok {
		t.Fatal("setup")
	}
	deadline := time.Now().Add(5 * ttl)
	for {
		_, held, _ := a.TryLock("locks/y", ttl)
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a crashed holder's lock never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisACMEChangesAnnounceDurableEntries(t *testing.T) {
	r := openTestRedis(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch := r.ACME().Changes(ctx)
	// The subscription is asynchronous: publish until one arrives.
	other := r.ACME()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for got := false; !got; {
		if err := other.Put("certificates/x.pem", []byte("pem"), 0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			got = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no change notification for a stored certificate")
		}
	}
	// A token (with a TTL) is not announced.
	for len(ch) > 0 {
		<-ch
	}
	if err := other.Put("challenges/tok", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("a challenge token was announced")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}
