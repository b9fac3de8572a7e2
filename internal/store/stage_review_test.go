package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// tmpFiles lists the temporary files (.tmp-*) in a directory store.
func tmpFiles(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, p := range listDir(t, path) {
		if strings.HasPrefix(filepath.Base(p), ".tmp-") {
			out = append(out, p)
		}
	}
	return out
}

// checkLinear checks a history's numbering: strictly increasing by one.
func checkLinear(t *testing.T, h []Event) {
	t.Helper()
	for i := 1; i < len(h); i++ {
		if h[i].Seq != h[i-1].Seq+1 {
			t.Fatalf("history not linear at %d: %+v", i, h)
		}
	}
}

// TestDirStageOtherHandleBetweenStageAndCommit: another handle on the
// directory (a second process) changes the history between StageBegin and
// Commit; the stale stage is never renamed over the newer history.
func TestDirStageOtherHandleBetweenStageAndCommit(t *testing.T) {
	tests := []struct {
		name    string
		between func(t *testing.T, other *Dir)
		wantErr error
		history []string
	}{
		{"other pushes and resolves", func(t *testing.T, o *Dir) {
			mustPut(t, o, "cccccc")
			c, err := o.Begin("aaaaaa", pendingEvent("cccccc"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Resolve(Resolution{Seq: c.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
		}, ErrConflict, []string{"push:applied", "push:applied"}},
		{"other push rejected and reverted", func(t *testing.T, o *Dir) {
			mustPut(t, o, "cccccc")
			c, err := o.Begin("aaaaaa", pendingEvent("cccccc"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Resolve(Resolution{Seq: c.Seq, Outcome: Rejected, Revert: true, Previous: "aaaaaa"}); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"push:applied", "push:rejected", "push:pending"}},
		{"other appends endpoints", func(t *testing.T, o *Dir) {
			if _, err := o.Append(Event{Version: "aaaaaa", Action: "endpoints", Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"push:applied", "endpoints:applied", "push:pending"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir()
			d, _ := OpenDir(path, 0)
			a, _ := begin(t, d, "", "aaaaaa")
			if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			other, _ := OpenDir(path, 0)
			staged := d.StageBegin("aaaaaa", pendingEvent("bbbbbb"))
			mustPut(t, d, "bbbbbb")
			staged.(*dirStage).written()
			tt.between(t, other)
			mustPut(t, d, "bbbbbb") // the other handle's prune may drop it
			ev, err := staged.Commit()
			staged.Discard()
			re, _ := OpenDir(path, 0)
			h, _ := re.History()
			checkLinear(t, h)
			var got []string
			for _, e := range h {
				got = append(got, e.Action+":"+e.Outcome)
			}
			if !slices.Equal(got, tt.history) {
				t.Fatalf("history %v, want %v (commit %+v, %v)", got, tt.history, ev, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("commit %v, want %v", err, tt.wantErr)
			}
			assertExplained(t, re)
			if tmp := tmpFiles(t, path); len(tmp) != 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestDirTwoStagesFromOneHistory: two stages built from the same history
// (two pushes staged concurrently); the second commit never renames its
// stale history over the first's.
func TestDirTwoStagesFromOneHistory(t *testing.T) {
	for _, revert := range []bool{false, true} {
		t.Run(fmt.Sprint("revert=", revert), func(t *testing.T) {
			path := t.TempDir()
			d, _ := OpenDir(path, 0)
			a, _ := begin(t, d, "", "aaaaaa")
			if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			mustPut(t, d, "bbbbbb", "cccccc")
			s1 := d.StageBegin("aaaaaa", pendingEvent("bbbbbb"))
			s2 := d.StageBegin("aaaaaa", pendingEvent("cccccc"))
			b, err := s1.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if revert {
				if _, err := d.Resolve(Resolution{Seq: b.Seq, Outcome: Rejected, Revert: true, Previous: "aaaaaa"}); err != nil {
					t.Fatal(err)
				}
				mustPut(t, d, "cccccc")
			}
			c, err := s2.Commit()
			s1.Discard()
			s2.Discard()
			h, _ := d.History()
			checkLinear(t, h)
			cur, _ := d.CurrentID()
			if !revert {
				if !errors.Is(err, ErrConflict) || cur != "bbbbbb" || len(h) != 2 {
					t.Fatalf("second commit %+v, %v; current %s, history %+v", c, err, cur, h)
				}
			} else if err != nil || cur != "cccccc" || len(h) != 3 || h[1].Outcome != Rejected || h[2].Version != "cccccc" {
				t.Fatalf("second commit %+v, %v; current %s, history %+v", c, err, cur, h)
			}
			assertExplained(t, d)
			if tmp := tmpFiles(t, path); len(tmp) != 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestDirConcurrentStagedPushes: pushes staged concurrently on one handle
// (each retrying on a conflict) race with endpoint appends: every push
// lands exactly once, the history stays linear, nothing stays pending and
// no temporary file is left.
func TestDirConcurrentStagedPushes(t *testing.T) {
	path := t.TempDir()
	d, _ := OpenDir(path, 200)
	a, _ := begin(t, d, "", "aaaaaa")
	if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 16 {
		wg.Go(func() {
			id := fmt.Sprintf("%06x", 0xb00000+i)
			for {
				cur, _ := d.CurrentID()
				s := d.StageBegin(cur, pendingEvent(id))
				if err := d.Put(version(id, id)); err != nil {
					t.Error(err)
				}
				ev, err := s.Commit()
				s.Discard()
				if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := d.Resolve(Resolution{Seq: ev.Seq, Outcome: Applied}); err != nil {
					t.Error(err)
				}
				mu.Lock()
				ok++
				mu.Unlock()
				return
			}
		})
		wg.Go(func() {
			if _, err := d.Append(Event{Version: "aaaaaa", Action: "endpoints", Outcome: Applied}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h, _ := d.History()
	checkLinear(t, h)
	pushes := 0
	for _, e := range h {
		if e.Action == "push" {
			pushes++
		}
		if e.Outcome == Pending {
			t.Fatalf("pending left: %+v", e)
		}
	}
	if pushes != ok+1 || ok != 16 {
		t.Fatalf("%d push events, %d pushes succeeded; want 17 and 16", pushes, ok)
	}
	if cur, _ := d.CurrentID(); cur != h[len(h)-1].Version && !slices.ContainsFunc(h, func(e Event) bool { return e.Version == cur }) {
		t.Fatalf("current %s not in history", cur)
	}
	if tmp := tmpFiles(t, path); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// TestDirCrashAfterStagingLeavesNoTemporaryFiles: a process that dies
// after staging (during the translation) leaves its synced temporary
// files; the next process to open the store removes them, and its pushes
// work.
func TestDirCrashAfterStagingLeavesNoTemporaryFiles(t *testing.T) {
	path := t.TempDir()
	d, _ := OpenDir(path, 0)
	a, _ := begin(t, d, "", "aaaaaa")
	if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three crashes during a push's translation
		s := d.StageBegin("aaaaaa", pendingEvent("bbbbbb"))
		s.(*dirStage).written() // the process dies: no Commit, no Discard
	}
	if n := len(tmpFiles(t, path)); n != 6 {
		t.Fatalf("%d temporary files after the crashes, want 6", n)
	}
	re, err := OpenDir(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tmp := tmpFiles(t, path); len(tmp) != 0 {
		t.Fatalf("temporary files left after a restart: %v", tmp)
	}
	assertExplained(t, re)
	if _, err := begin(t, re, "aaaaaa", "bbbbbb"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := re.CurrentID(); cur != "bbbbbb" {
		t.Fatalf("current %s, want bbbbbb", cur)
	}
}

// TestDirStagedCommitCrashStatesAreBegins: a crash at each point of a
// staged commit (before the history rename, between the renames, after
// both) leaves what Begin's crash leaves there, and ResolveOrphans settles
// it the same way.
func TestDirStagedCommitCrashStatesAreBegins(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprint("staged=", staged), func(t *testing.T) {
			path := t.TempDir()
			d, _ := OpenDir(path, 0)
			a, _ := begin(t, d, "", "aaaaaa")
			if _, err := d.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			mustPut(t, d, "bbbbbb")
			d.stopAfter = stepBeginHistory
			var err error
			if staged {
				_, err = d.StageBegin("aaaaaa", pendingEvent("bbbbbb")).Commit()
			} else {
				_, err = d.Begin("aaaaaa", pendingEvent("bbbbbb"))
			}
			if !errors.Is(err, errStopped) {
				t.Fatal(err)
			}
			h, _ := d.History()
			cur, _ := d.CurrentID()
			if cur != "aaaaaa" || len(h) != 2 || h[1].Outcome != Pending || h[1].Seq != 2 {
				t.Fatalf("after the crash: current %s, history %+v", cur, h)
			}
		})
	}
}
