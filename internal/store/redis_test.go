package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

func openTestRedis(t *testing.T, keep int) *Redis {
	t.Helper()
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	r, err := OpenRedis(context.Background(), rdb, RedisOptions{Prefix: "t:", Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStoresSwapCurrent runs the compare-and-set contract on both stores.
func TestStoresSwapCurrent(t *testing.T) {
	dir, err := OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]Store{"dir": dir, "redis": openTestRedis(t, 0)} {
		t.Run(name, func(t *testing.T) {
			for _, v := range []*Version{version("aaaaaa", "a"), version("bbbbbb", "b"), version("cccccc", "c")} {
				if err := st.Put(v); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.SwapCurrent("", "aaaaaa"); err != nil {
				t.Fatalf("first swap: %v", err)
			}
			if err := st.SwapCurrent("aaaaaa", "bbbbbb"); err != nil {
				t.Fatalf("swap a→b: %v", err)
			}
			err := st.SwapCurrent("aaaaaa", "cccccc")
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Current != "bbbbbb" || !errors.Is(err, ErrConflict) {
				t.Fatalf("stale swap: %v, want a conflict naming bbbbbb", err)
			}
			if cur, _ := st.Current(); cur.ID != "bbbbbb" {
				t.Fatalf("current %s after a refused swap, want bbbbbb", cur.ID)
			}
			if err := st.SwapCurrent("bbbbbb", "dddddd"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("swap to an unknown version: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestRedisConcurrentSwapsOneWins races 20 swaps from the same current.
func TestRedisConcurrentSwapsOneWins(t *testing.T) {
	r := openTestRedis(t, 0)
	_ = r.Put(version("aaaaaa", "a"))
	if err := r.SetCurrent("aaaaaa"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 20 {
		id := fmt.Sprintf("b%05d", i)
		_ = r.Put(version(id, id))
		wg.Go(func() {
			err := r.SwapCurrent("aaaaaa", id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 19 {
		t.Fatalf("wins %d, conflicts %d; want 1 and 19", wins, conflicts)
	}
}

func TestRedisLockAndHistory(t *testing.T) {
	r := openTestRedis(t, 2)
	ctx := context.Background()
	unlock, err := r.Lock(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, 10*time.Second); !errors.Is(err, ErrConflict) {
		t.Fatalf("second lock: %v, want a conflict", err)
	}
	unlock()
	unlock2, err := r.Lock(ctx, 10*time.Second)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	for i, id := range []string{"aaaaaa", "bbbbbb", "cccccc"} {
		_ = r.Put(version(id, id))
		_ = r.SetCurrent(id)
		ev, err := r.Append(Event{Version: id, Action: "push", Outcome: Applied, Message: "a/b \"q\"", At: time.Unix(int64(i), 0).UTC()})
		if err != nil || ev.Seq != i+1 {
			t.Fatalf("append %s: seq %d, %v", id, ev.Seq, err)
		}
	}
	h, err := r.History()
	if err != nil || len(h) != 2 || h[0].Seq != 2 || h[1].Version != "cccccc" || h[1].Message != "a/b \"q\"" {
		t.Fatalf("history %+v, %v; want events 2 and 3", h, err)
	}
	if _, err := r.Get("aaaaaa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned version: %v, want ErrNotFound", err)
	}
}

func TestRedisChangesNotifies(t *testing.T) {
	r := openTestRedis(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := r.Changes(ctx)
	_ = r.Put(version("aaaaaa", "a"))
	deadline := time.After(5 * time.Second)
	for {
		// The subscription may not be active yet: keep changing until heard.
		_ = r.SetCurrent("aaaaaa")
		select {
		case <-ch:
			return
		case <-deadline:
			t.Fatal("no change notification within 5s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestStoresCurrentID checks, on both stores, that CurrentID names the
// current version ("" for an empty store) and reads only the pointer: it
// answers even when the version's record is unreadable, where Current
// fails.
func TestStoresCurrentID(t *testing.T) {
	path := t.TempDir()
	dir, err := OpenDir(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs := openTestRedis(t, 0)
	corrupt := map[string]func(id string) error{
		"dir": func(id string) error { return os.WriteFile(dir.versionPath(id), []byte("{not json"), 0o600) },
		"redis": func(id string) error {
			return rs.rdb.Set(context.Background(), rs.key("version:"+id), "{not json", 0).Err()
		},
	}
	for name, st := range map[string]Store{"dir": dir, "redis": rs} {
		t.Run(name, func(t *testing.T) {
			if id, err := st.CurrentID(); err != nil || id != "" {
				t.Fatalf("empty store: CurrentID() = %q, %v; want \"\", nil", id, err)
			}
			for _, v := range []*Version{version("aaaaaa", "a"), version("bbbbbb", "b")} {
				if err := st.Put(v); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"aaaaaa", "bbbbbb"} {
				if err := st.SetCurrent(id); err != nil {
					t.Fatal(err)
				}
				cur, err := st.Current()
				if err != nil {
					t.Fatal(err)
				}
				if got, err := st.CurrentID(); err != nil || got != id || got != cur.ID {
					t.Fatalf("CurrentID() = %q, %v; want %s (Current's)", got, err, id)
				}
			}
			if err := corrupt[name]("bbbbbb"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Current(); err == nil {
				t.Fatal("Current() of an unreadable version: no error")
			}
			if got, err := st.CurrentID(); err != nil || got != "bbbbbb" {
				t.Fatalf("CurrentID() with an unreadable version = %q, %v; want bbbbbb (the pointer only)", got, err)
			}
		})
	}
}
