package policy

import (
	"strconv"
	"strings"
	"sync"
)

// source is what Load remembers about where the policy came from, so that
// Validate can point at file:line:col for any field path. A nil *source is
// valid: it knows no positions and no failures.
type source struct {
	// files in load order; the first is the fallback location.
	files []string
	// records holds the position of every field value, in walk order. The
	// path → record index is only built when a diagnostic needs a position,
	// so a valid policy never pays for it.
	records   [][]record // chunks, so that growing never copies
	count     int        // records in all chunks
	indexOnce sync.Once
	index     map[string]record

	// failed holds the paths whose value could not be loaded; Validate stays
	// quiet about them and everything below them, as Load already reported.
	failed map[string]bool
	// tainted holds every path at or above a failed one.
	tainted map[string]bool
	// partial is true when some names may be missing (a file did not parse,
	// or a list or a name had the wrong shape), so checks that need the full
	// set of names (references, unused backends, "no gateways") are skipped.
	partial bool
}

// Chunk capacities for records: small policies stay small, big ones grow
// by full chunks.
const (
	minRecordChunk = 64
	maxRecordChunk = 4096
)

// record is the position of one field path's value; file indexes files.
type record struct {
	path               string
	file, line, column int32
}

func newSource() *source {
	return &source{failed: make(map[string]bool), tainted: make(map[string]bool)}
}

// add records that path's value is at line:column of the file being
// loaded (the last one in files). The first record of a path wins.
func (s *source) add(path string, line, column int) {
	last := len(s.records) - 1
	if last < 0 || len(s.records[last]) == cap(s.records[last]) {
		size := min(maxRecordChunk, max(minRecordChunk, s.count))
		s.records = append(s.records, make([]record, 0, size))
		last++
	}
	s.count++
	s.records[last] = append(s.records[last], record{
		path: path, file: int32(len(s.files) - 1), line: int32(line), column: int32(column),
	})
}

// rangeOf returns the position of path, or of its nearest ancestor that has
// one, or the first file.
func (s *source) rangeOf(path string) Range {
	if s == nil {
		return Range{}
	}
	s.indexOnce.Do(s.buildIndex)
	for p := path; p != ""; p = parentPath(p) {
		if rec, ok := s.index[p]; ok {
			return Range{File: s.fileName(rec.file), Line: int(rec.line), Column: int(rec.column)}
		}
	}
	if len(s.files) == 0 {
		return Range{}
	}
	return Range{File: s.files[0], Line: 1, Column: 1}
}

// scanRange is rangeOf for one top-level path, found by scanning the
// records instead of building the index: for a diagnostic of a valid
// policy, which would otherwise pay for the index.
func (s *source) scanRange(path string) Range {
	if s == nil || len(s.files) == 0 {
		return Range{}
	}
	for _, chunk := range s.records {
		for _, rec := range chunk {
			if rec.path == path {
				return Range{File: s.fileName(rec.file), Line: int(rec.line), Column: int(rec.column)}
			}
		}
	}
	return Range{File: s.files[0], Line: 1, Column: 1}
}

func (s *source) buildIndex() {
	s.index = make(map[string]record, s.count)
	for _, chunk := range s.records {
		for _, rec := range chunk {
			if _, ok := s.index[rec.path]; !ok {
				s.index[rec.path] = rec
			}
		}
	}
}

func (s *source) fileName(i int32) string {
	if i < 0 || int(i) >= len(s.files) {
		return ""
	}
	return s.files[i]
}

// markFailed records that path's value could not be loaded.
func (s *source) markFailed(path string) {
	s.failed[path] = true
	for p := path; p != ""; p = parentPath(p) {
		if s.tainted[p] {
			return
		}
		s.tainted[p] = true
	}
}

// isFailed reports whether path or an ancestor of it failed to load.
func (s *source) isFailed(path string) bool {
	if s == nil || len(s.failed) == 0 {
		return false
	}
	for p := path; p != ""; p = parentPath(p) {
		if s.failed[p] {
			return true
		}
	}
	return false
}

// isTainted reports whether path or anything under it failed to load.
func (s *source) isTainted(path string) bool {
	return s != nil && s.tainted[path]
}

// anyTainted reports whether any path failed to load: without, isTainted
// is false for every path.
func (s *source) anyTainted() bool {
	return s != nil && len(s.tainted) > 0
}

// isPartial reports whether some names may be missing from the policy.
func (s *source) isPartial() bool {
	return s != nil && s.partial
}

// fieldPath returns base.name, or name at the top level.
func fieldPath(base, name string) string {
	if base == "" {
		return name
	}
	return base + "." + name
}

// indexPath returns base[i].
func indexPath(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// pathBlock is the size of the blocks a pathArena builds paths in.
const pathBlock = 4 << 10

// pathArena builds field paths (fieldPath, indexPath) in shared blocks of
// memory instead of an allocation each: Load records the path of every
// value it reads, ~60,000 for 10,000 routes. A path is a substring of its
// block, which strings.Builder never writes again once written (there is
// always room for the path: a new block is begun instead of growing one),
// so the paths are as immutable as any string. A block stays alive while
// one of its paths does. An arena is for one goroutine.
type pathArena struct{ b strings.Builder }

// field is fieldPath(base, name).
func (a *pathArena) field(base, name string) string {
	if base == "" {
		return name
	}
	start := a.reserve(len(base) + 1 + len(name))
	a.b.WriteString(base)
	a.b.WriteByte('.')
	a.b.WriteString(name)
	return a.b.String()[start:]
}

// index is indexPath(base, i).
func (a *pathArena) index(base string, i int) string {
	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(i), 10)
	start := a.reserve(len(base) + len(digits) + 2)
	a.b.WriteString(base)
	a.b.WriteByte('[')
	a.b.Write(digits)
	a.b.WriteByte(']')
	return a.b.String()[start:]
}

// reserve makes room for n more bytes in the current block, beginning a
// new one if needed, and returns where they start.
func (a *pathArena) reserve(n int) int {
	if a.b.Cap()-a.b.Len() < n {
		a.b = strings.Builder{} // the old block stays as its paths hold it
		a.b.Grow(max(n, pathBlock))
	}
	return a.b.Len()
}

// indexPaths returns base[0] … base[n-1], sharing one string's memory.
func indexPaths(base string, n int) []string {
	var b strings.Builder
	b.Grow(n * (len(base) + 8))
	ends := make([]int, n)
	for i := range n {
		b.WriteString(base)
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(']')
		ends[i] = b.Len()
	}
	all, out, start := b.String(), make([]string, n), 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// parentPath strips the last ".field" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// lastSegment returns the last field name of path.
func lastSegment(path string) string {
	return path[strings.LastIndexAny(path, ".[")+1:]
}

// firstRange returns where path was first recorded. Unlike rangeOf it
// scans the records, so Load may call it while it still adds records.
func (s *source) firstRange(path string) Range {
	for _, chunk := range s.records {
		for _, rec := range chunk {
			if rec.path == path {
				return Range{File: s.fileName(rec.file), Line: int(rec.line), Column: int(rec.column)}
			}
		}
	}
	return Range{}
}
