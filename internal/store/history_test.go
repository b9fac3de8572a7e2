package store

import (
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
