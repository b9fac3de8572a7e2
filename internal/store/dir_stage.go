package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tollgate/tollgate/internal/atomicfile"
)

// dirStage is a Begin that Dir.StageBegin prepared: the new history (with
// the event appended) and the new current pointer written and synced to
// temporary files. hist and cur are nil when staging failed; Commit then
// is a plain Begin.
type dirStage struct {
	d   *Dir
	old string
	ev  Event // as given: Commit's fallback Begin numbers it itself
	// raw is the history file the new history was built from (nil when
	// there was none), h the new history and numbered the event in it.
	raw       []byte
	h         []Event
	numbered  Event
	hist, cur *atomicfile.Staged
	// written waits until hist and cur are written (or failed).
	written func()
}

// StageBegin writes what Begin(old, ev) would write, the history with ev
// appended and the current pointer, to synced temporary files beside them
// (atomicfile.Stage), which readers and a crash ignore. It reads the
// history and returns; the files are written on goroutines of their own,
// so the caller may store the version meanwhile. Commit then only
// renames them, the history first, each rename made durable before the
// next, as Begin does: a push stages while it translates and commits with
// two directory fsyncs instead of three fsyncs and the history's encoding.
// Commit checks, under the store's lock, that the history is the one
// staged from and does all of Begin's checks (current version, stored
// version); when the history changed meanwhile it discards the stage and
// runs Begin itself.
func (d *Dir) StageBegin(old string, ev Event) StagedBegin {
	s := &dirStage{d: d, old: old, ev: ev, written: func() {}}
	d.mu.Lock()
	raw, h, err := d.readHistory()
	d.mu.Unlock()
	if err != nil || !versionID.MatchString(ev.Version) {
		return s // Begin reports it
	}
	s.raw = raw
	s.h, s.numbered = d.appended(h, ev)
	var wg sync.WaitGroup
	var herr, cerr error
	wg.Go(func() { s.cur, cerr = atomicfile.Stage(filepath.Join(d.path, "current"), []byte(ev.Version+"\n")) })
	wg.Go(func() {
		b, err := marshalIndent(s.h)
		if err == nil {
			s.hist, err = atomicfile.Stage(filepath.Join(d.path, "history.json"), b)
		}
		herr = err
	})
	s.written = sync.OnceFunc(func() {
		wg.Wait()
		if herr != nil || cerr != nil {
			s.drop()
		}
	})
	return s
}

// Commit makes the staged history and pointer the store's, or runs Begin
// when nothing is staged or the history changed since StageBegin.
func (s *dirStage) Commit() (Event, error) {
	s.written()
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	defer s.drop()
	if s.hist == nil || s.cur == nil || !s.historyUnchanged() {
		return d.begin(s.old, s.ev)
	}
	if err := d.canBegin(s.old, s.ev.Version); err != nil {
		return s.ev, err
	}
	ev := s.numbered
	if err := s.hist.Commit(); err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	if err := d.stop(stepBeginHistory); err != nil {
		return ev, err
	}
	if err := s.cur.Commit(); err != nil {
		return ev, fmt.Errorf("store current version: %w", err)
	}
	return ev, d.prune(s.h)
}

// historyUnchanged says whether the history file is still the one the
// stage was built from (d.mu held).
func (s *dirStage) historyUnchanged() bool {
	raw, err := os.ReadFile(filepath.Join(s.d.path, "history.json"))
	if errors.Is(err, os.ErrNotExist) {
		return s.raw == nil
	}
	return err == nil && s.raw != nil && bytes.Equal(raw, s.raw)
}

// Discard removes the temporary files not committed.
func (s *dirStage) Discard() {
	s.written()
	s.drop()
}

// drop removes the temporary files not committed, once written.
func (s *dirStage) drop() {
	for _, f := range []*atomicfile.Staged{s.hist, s.cur} {
		if f != nil {
			f.Discard()
		}
	}
	s.hist, s.cur = nil, nil
}
