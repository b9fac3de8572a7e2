package store

import (
	"errors"
	"testing"
	"time"
)

func version(id, content string) *Version {
	return &Version{ID: id, Files: []File{{Name: "p.yaml", Content: content}}, CreatedAt: time.Unix(1, 0).UTC()}
}

func TestDirEmpty(t *testing.T) {
	d, err := OpenDir(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := d.Current()
	if err != nil || cur != nil {
		t.Fatalf("Current() = %v, %v; want nil, nil", cur, err)
	}
	if _, err := d.Get("abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown: %v, want ErrNotFound", err)
	}
	if _, err := d.Get("../../etc/passwd"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get traversal: %v, want ErrNotFound", err)
	}
}

func TestDirCommitAndReopen(t *testing.T) {
	path := t.TempDir()
	d, _ := OpenDir(path, 0)
	mustCommit(t, d, version("aaaaaa", "a"), Applied)
	mustCommit(t, d, version("bbbbbb", "b"), Rejected)
	// A rejected version does not become current; a reopened store sees it all.
	d2, _ := OpenDir(path, 0)
	cur, err := d2.Current()
	if err != nil || cur.ID != "aaaaaa" || cur.Files[0].Content != "a" {
		t.Fatalf("Current() = %+v, %v; want aaaaaa", cur, err)
	}
	h, _ := d2.History()
	if len(h) != 2 || h[0].Seq != 1 || h[1].Seq != 2 || h[1].Outcome != Rejected {
		t.Fatalf("History() = %+v", h)
	}
	if v, err := d2.Get("bbbbbb"); err != nil || v.Files[0].Content != "b" {
		t.Fatalf("Get rejected = %+v, %v", v, err)
	}
}

func TestDirPrunesBeyondKeep(t *testing.T) {
	d, _ := OpenDir(t.TempDir(), 2)
	mustCommit(t, d, version("aaaaaa", "a"), Applied)
	mustCommit(t, d, version("bbbbbb", "b"), Applied)
	mustCommit(t, d, version("cccccc", "c"), Applied)
	if _, err := d.Get("aaaaaa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest version kept: %v", err)
	}
	h, _ := d.History()
	if len(h) != 2 || h[0].Version != "bbbbbb" || h[1].Seq != 3 {
		t.Fatalf("History() = %+v", h)
	}
}

func TestDirSetCurrentUnknown(t *testing.T) {
	d, _ := OpenDir(t.TempDir(), 0)
	if err := d.SetCurrent("abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetCurrent unknown: %v, want ErrNotFound", err)
	}
}

func mustCommit(t *testing.T, d *Dir, v *Version, outcome string) {
	t.Helper()
	if err := d.Put(v); err != nil {
		t.Fatal(err)
	}
	if outcome == Applied {
		if err := d.SetCurrent(v.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Append(Event{Version: v.ID, Action: "push", Outcome: outcome, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
}
