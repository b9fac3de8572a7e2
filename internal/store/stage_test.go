package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStageBeginIsBegin: a staged Begin commits with Begin's outcome at
// the time of the commit, whatever happened between staging and commit.
func TestStageBeginIsBegin(t *testing.T) {
	tests := []struct {
		name    string
		before  func(t *testing.T, st Store) // before StageBegin
		between func(t *testing.T, st Store) // between StageBegin and Commit
		wantErr error                        // nil: b becomes current, pending
		history []string                     // actions of the history after Commit
	}{
		{name: "plain", before: func(t *testing.T, st Store) { mustPut(t, st, "bbbbbb") },
			history: []string{"push:applied", "push:pending"}},
		{name: "history appended meanwhile", between: func(t *testing.T, st Store) {
			if _, err := st.Append(Event{Version: "aaaaaa", Action: "endpoints", Outcome: Applied}); err != nil {
				t.Fatal(err)
			}
			mustPut(t, st, "bbbbbb") // after: a directory store's Append prunes versions no event names
		},
			history: []string{"push:applied", "endpoints:applied", "push:pending"}},
		{name: "version stored after staging", between: func(t *testing.T, st Store) { mustPut(t, st, "bbbbbb") },
			history: []string{"push:applied", "push:pending"}},
		{name: "version never stored", wantErr: ErrNotFound, history: []string{"push:applied"}},
		{name: "current moved meanwhile", before: func(t *testing.T, st Store) { mustPut(t, st, "bbbbbb", "cccccc") },
			between: func(t *testing.T, st Store) {
				if err := st.SwapCurrent("aaaaaa", "cccccc"); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrConflict, history: []string{"push:applied"}},
	}
	for _, tt := range tests {
		for name, s := range bothStores(t) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				st := s.st
				a, err := begin(t, st, "", "aaaaaa")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.Resolve(Resolution{Seq: a.Seq, Outcome: Applied}); err != nil {
					t.Fatal(err)
				}
				if tt.before != nil {
					tt.before(t, st)
				}
				staged := st.StageBegin("aaaaaa", pendingEvent("bbbbbb"))
				if tt.between != nil {
					tt.between(t, st)
				}
				ev, err := staged.Commit()
				staged.Discard()
				checkStaged(t, s.reopen(), ev, err, tt.wantErr, tt.history)
			})
		}
	}
}

// checkStaged checks a store after a staged Begin of bbbbbb that returned
// ev, err.
func checkStaged(t *testing.T, st Store, ev Event, err, wantErr error, wantHistory []string) {
	t.Helper()
	h, herr := st.History()
	if herr != nil {
		t.Fatal(herr)
	}
	var got []string
	for _, e := range h {
		got = append(got, e.Action+":"+e.Outcome)
	}
	if !slices.Equal(got, wantHistory) {
		t.Errorf("history %v, want %v", got, wantHistory)
	}
	cur, _ := st.CurrentID()
	if wantErr != nil {
		if !errors.Is(err, wantErr) || cur == "bbbbbb" {
			t.Fatalf("Commit = %+v, %v, current %s; want %v and bbbbbb not current", ev, err, cur, wantErr)
		}
		return
	}
	if last := h[len(h)-1]; err != nil || cur != "bbbbbb" || ev != last || ev.Seq != h[len(h)-2].Seq+1 {
		t.Fatalf("Commit = %+v, %v, current %s; want bbbbbb current and the event %+v numbered next", ev, err, cur, last)
	}
}

// TestDirStageDiscardLeavesNothing: a discarded stage leaves the directory
// as it was, without temporary files; a committed one leaves none either.
func TestDirStageDiscardLeavesNothing(t *testing.T) {
	path := t.TempDir()
	d, _ := OpenDir(path, 0)
	if _, err := begin(t, d, "", "aaaaaa"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, d, "bbbbbb")
	before := listDir(t, path)
	s := d.StageBegin("aaaaaa", pendingEvent("bbbbbb"))
	s.(*dirStage).written()
	if staged := listDir(t, path); len(staged) != len(before)+2 {
		t.Fatalf("staged files %v, want two temporary files more than %v", staged, before)
	}
	s.Discard()
	if after := listDir(t, path); !slices.Equal(after, before) {
		t.Fatalf("after Discard %v, want %v", after, before)
	}
	if cur, _ := d.CurrentID(); cur != "aaaaaa" {
		t.Fatalf("current %s, want aaaaaa", cur)
	}
	// Committed, the staged files are the history and the pointer.
	staged := d.StageBegin("aaaaaa", pendingEvent("bbbbbb")).(*dirStage)
	staged.written()
	if !staged.historyUnchanged() || staged.hist == nil || staged.cur == nil {
		t.Fatal("nothing staged")
	}
	if _, err := staged.Commit(); err != nil {
		t.Fatal(err)
	}
	if cur, _ := d.CurrentID(); cur != "bbbbbb" || len(listDir(t, path)) != len(before) {
		t.Fatalf("current %s, files %v; want bbbbbb and no temporary file", cur, listDir(t, path))
	}
}

func listDir(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(path, func(p string, _ os.DirEntry, err error) error {
		out = append(out, strings.TrimPrefix(p, path))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
