package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStoresKeepTheReason: the pusher's reason (push -m) is stored with
// the event, in both stores, and survives reopening the store.
func TestStoresKeepTheReason(t *testing.T) {
	path := t.TempDir()
	dir, err := OpenDir(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	reopen := map[string]func() Store{
		"dir": func() Store {
			d, err := OpenDir(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
	red := openTestRedis(t, 0)
	reopen["redis"] = func() Store { return red }
	stores := map[string]Store{"dir": dir, "redis": red}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			want := Event{Version: "aaaaaa", Action: "push", Outcome: Applied, Reason: `raise the "pro" limit; ticket #42`,
				Source: "ci@host", At: time.Unix(7, 0).UTC()}
			if _, err := st.Append(want); err != nil {
				t.Fatal(err)
			}
			h, err := reopen[name]().History()
			if err != nil || len(h) != 1 {
				t.Fatalf("History() = %+v, %v", h, err)
			}
			want.Seq = 1
			if h[0] != want {
				t.Errorf("History()[0] = %+v, want %+v", h[0], want)
			}
		})
	}
}

// TestStoresPruneVersionsOfFailedPushes: a version stored by a push that
// failed before Begin (validated, then stopped by translation, a conflict
// or a lost lease) is named by no event; the next pushes delete it, so a
// store does not grow with failed pushes. Both stores keep 2 events here:
// what remains is the two pushed versions.
func TestStoresPruneVersionsOfFailedPushes(t *testing.T) {
	dir, err := OpenDir(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	rs := openTestRedis(t, 2)
	failed := []string{"f00001", "f00002", "f00003", "f00004"}
	for name, st := range map[string]Store{"dir": dir, "redis": rs} {
		t.Run(name, func(t *testing.T) {
			push := func(old, id string) {
				t.Helper()
				ev, err := begin(t, st, old, id)
				if err == nil {
					_, err = st.Resolve(Resolution{Seq: ev.Seq, Outcome: Applied})
				}
				if err != nil {
					t.Fatalf("push %s: %v", id, err)
				}
			}
			push("", "aaaaaa")
			mustPut(t, st, failed...) // each push failed after Put
			push("aaaaaa", "bbbbbb")
			for _, id := range failed {
				if _, err := st.Get(id); !errors.Is(err, ErrNotFound) {
					t.Errorf("version %s of a failed push: %v, want ErrNotFound (pruned)", id, err)
				}
			}
			for _, id := range []string{"aaaaaa", "bbbbbb"} {
				if _, err := st.Get(id); err != nil {
					t.Errorf("version %s named by the history: %v", id, err)
				}
			}
		})
	}
	if n, err := rs.rdb.SCard(context.Background(), rs.key("versions")).Result(); err != nil || n != 2 {
		t.Errorf("Redis set of stored versions: %d ids, %v; want 2", n, err)
	}
}
