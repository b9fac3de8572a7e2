package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// reopenable is a store and a way to open it again, as a restarted control
// plane would (a new directory handle, a new Redis connection).
type reopenable struct {
	st     Store
	reopen func() Store
}

// bothStores returns a fresh directory store and a fresh Redis store.
func bothStores(t *testing.T) map[string]reopenable {
	t.Helper()
	path := t.TempDir()
	openDir := func() Store {
		d, err := OpenDir(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	addr := harness.StartRedis(t)
	openRedis := func() Store {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		r, err := OpenRedis(context.Background(), rdb, RedisOptions{Prefix: "t:"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return map[string]reopenable{"dir": {openDir(), openDir}, "redis": {openRedis(), openRedis}}
}

// begin stores version id and begins its push (a directory store prunes
// versions that no event names yet, so each is put just before).
func begin(t *testing.T, st Store, old, id string) (Event, error) {
	t.Helper()
	mustPut(t, st, id)
	return st.Begin(old, pendingEvent(id))
}

func pendingEvent(id string) Event {
	return Event{Version: id, Action: "push", Outcome: Pending, Reason: "why", Source: "ci@host", At: time.Unix(9, 0).UTC()}
}

// assertExplained checks the store's contract: the current version is the
// one of the newest applied or pending event that moved it, skipping
// pending events whose version is not current (a directory store stopped
// between its two writes leaves one; ResolveOrphans settles it).
func assertExplained(t *testing.T, st Store) {
	t.Helper()
	cur, err := st.Current()
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.History()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		if e.Outcome == Pending && (cur == nil || cur.ID != e.Version) {
			continue
		}
		if e.Action != "endpoints" && (e.Outcome == Applied || e.Outcome == Pending) {
			if cur == nil || cur.ID != e.Version {
				t.Fatalf("current %v is not explained: the newest applied or pending event is %+v", cur, e)
			}
			return
		}
	}
	if cur != nil {
		t.Fatalf("current %s is not explained: no applied or pending event in %+v", cur.ID, h)
	}
}

// assertSettled checks that no event is pending any more.
func assertSettled(t *testing.T, st Store) {
	t.Helper()
	h, err := st.History()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h {
		if e.Outcome == Pending {
			t.Fatalf("event %+v still pending", e)
		}
	}
	assertExplained(t, st)
}

func mustPut(t *testing.T, st Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := st.Put(version(id, id)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoresBeginResolve: Begin moves the current version and records a
// pending event together; Resolve settles it once, reverting when asked.
func TestStoresBeginResolve(t *testing.T) {
	for name, s := range bothStores(t) {
		t.Run(name, func(t *testing.T) {
			st := s.st
			a, err := begin(t, st, "", "aaaaaa")
			if err != nil || a.Seq != 1 {
				t.Fatalf("Begin a = %+v, %v", a, err)
			}
			assertExplained(t, st)
			if ev, err := st.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil || ev.Outcome != Applied || ev.Reason != "why" {
				t.Fatalf("Resolve a = %+v, %v", ev, err)
			}
			if _, err := st.Resolve(Resolution{Seq: a.Seq, Outcome: Rejected}); !errors.Is(err, ErrNotPending) {
				t.Fatalf("second Resolve: %v, want ErrNotPending", err)
			}
			var ce *ConflictError
			if _, err := st.Begin("bbbbbb", pendingEvent("bbbbbb")); !errors.As(err, &ce) {
				t.Fatalf("stale Begin: %v, want a conflict", err)
			}
			if _, err := st.Begin("aaaaaa", pendingEvent("cccccc")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Begin of an unknown version: %v, want ErrNotFound", err)
			}
			if h, _ := st.History(); len(h) != 1 {
				t.Fatalf("refused Begins changed the history: %+v", h)
			}
			b, err := begin(t, st, "aaaaaa", "bbbbbb")
			if err != nil {
				t.Fatal(err)
			}
			ev, err := st.Resolve(Resolution{Seq: b.Seq, Outcome: Rejected, Message: "NACK", Revert: true, Previous: "aaaaaa"})
			if err != nil || ev.Outcome != Rejected || ev.Message != "NACK" || ev.Seq != 2 {
				t.Fatalf("Resolve b = %+v, %v", ev, err)
			}
			if cur, _ := st.Current(); cur.ID != "aaaaaa" {
				t.Fatalf("current %s after a rejected push, want aaaaaa back", cur.ID)
			}
			assertExplained(t, s.reopen())
		})
	}
}

// TestStoresCrashDuringAckWait: a control plane killed between Begin and
// Resolve leaves its version current and a pending event explaining it;
// ResolveOrphans settles it as applied after the restart.
func TestStoresCrashDuringAckWait(t *testing.T) {
	for name, s := range bothStores(t) {
		t.Run(name, func(t *testing.T) {
			a, _ := begin(t, s.st, "", "aaaaaa")
			if _, err := s.st.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			if _, err := begin(t, s.st, "aaaaaa", "bbbbbb"); err != nil {
				t.Fatal(err)
			}
			// The crash: nothing more from this store handle.
			st := s.reopen()
			assertExplained(t, st)
			settled, err := ResolveOrphans(st)
			if err != nil || len(settled) != 1 || settled[0].Outcome != Applied || settled[0].Version != "bbbbbb" ||
				!strings.Contains(settled[0].Message, "recovered after a restart") {
				t.Fatalf("ResolveOrphans = %+v, %v; want b applied", settled, err)
			}
			assertSettled(t, st)
			if again, err := ResolveOrphans(st); err != nil || len(again) != 0 {
				t.Fatalf("second ResolveOrphans = %+v, %v; want nothing", again, err)
			}
		})
	}
}

// TestDirCrashBetweenSteps stops the directory store's two-file writes
// after their first step, as a crash would: the reopened store is still
// explained by its history, and ResolveOrphans settles the push as
// interrupted.
func TestDirCrashBetweenSteps(t *testing.T) {
	tests := []struct {
		step string
		run  func(t *testing.T, d *Dir) error
	}{
		{stepBeginHistory, func(t *testing.T, d *Dir) error {
			_, err := begin(t, d, "aaaaaa", "bbbbbb")
			return err
		}},
		{stepBeginHistory + " (staged)", func(t *testing.T, d *Dir) error {
			mustPut(t, d, "bbbbbb")
			_, err := d.StageBegin("aaaaaa", pendingEvent("bbbbbb")).Commit()
			return err
		}},
		{stepResolveCurrent, func(t *testing.T, d *Dir) error {
			b, err := begin(t, d, "aaaaaa", "bbbbbb")
			if err != nil {
				return err
			}
			d.stopAfter = stepResolveCurrent
			_, err = d.Resolve(Resolution{Seq: b.Seq, Outcome: Rejected, Message: "NACK", Revert: true, Previous: "aaaaaa"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			path := t.TempDir()
			d, _ := OpenDir(path, 0)
			a, _ := begin(t, d, "", "aaaaaa")
			if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tt.step, stepBeginHistory) {
				d.stopAfter = stepBeginHistory
			}
			if err := tt.run(t, d); !errors.Is(err, errStopped) {
				t.Fatalf("run: %v, want it stopped after %s", err, tt.step)
			}
			re, _ := OpenDir(path, 0)
			if cur, _ := re.Current(); cur.ID != "aaaaaa" {
				t.Fatalf("current %s after the crash, want aaaaaa", cur.ID)
			}
			assertExplained(t, re)
			settled, err := ResolveOrphans(re)
			if err != nil || len(settled) != 1 || settled[0].Outcome != Interrupted || settled[0].Version != "bbbbbb" ||
				!strings.Contains(settled[0].Message, "version aaaaaa stayed current") {
				t.Fatalf("ResolveOrphans = %+v, %v; want b interrupted", settled, err)
			}
			assertSettled(t, re)
		})
	}
}

// TestResolveOrphansSupersededAndEndpoints: an old pending event followed by
// another push is interrupted whatever the current version; a pending event
// followed only by endpoint changes is still the one that explains current.
func TestResolveOrphansSupersededAndEndpoints(t *testing.T) {
	for name, s := range bothStores(t) {
		t.Run(name, func(t *testing.T) {
			st := s.st
			if _, err := begin(t, st, "", "aaaaaa"); err != nil {
				t.Fatal(err)
			}
			if _, err := begin(t, st, "aaaaaa", "bbbbbb"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(Event{Version: "bbbbbb", Action: "endpoints", Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			settled, err := ResolveOrphans(st)
			if err != nil || len(settled) != 2 || settled[0].Outcome != Interrupted || settled[1].Outcome != Applied {
				t.Fatalf("ResolveOrphans = %+v, %v; want a interrupted, b applied", settled, err)
			}
			assertSettled(t, st)
		})
	}
}
