package policy

import (
	"bytes"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
)

// Reusing the parse of unchanged text across builds.
//
// A push usually changes a few routes of a large policy, yet parsing the
// file is the largest part of a build. A ParseCache cuts the file as
// parseSplit does (the rest, and chunks of the largest top-level block
// sequence starting at item lines), but at content-defined places: a cut
// is chosen by a hash of the item that starts there and the bytes since
// the previous cut, so an inserted, edited or deleted item changes the
// text of the chunk around it only (and at times of its neighbour), and
// the other chunks keep their exact text. Each part's tree is a function
// of its text alone (parseChunkText, parseRestText; parseSplit's
// argument holds for a cut at any item line it lists), so a part whose
// text, indentation and span are those of a part of the previous build
// reuses that build's tree: the cache keeps it flat (yaml_flat.go) and
// builds each build a new one from it, lines shifted to the file's, that
// the loader may change (wrap, appendList's release) without touching the
// cache. The other parts are parsed, on the build's goroutines; if any
// part fails, the file is parsed sequentially, which also words the
// errors.

// ParseCache remembers the YAML trees of the parts of the large policy
// files of the last build that used it, so that the next build parses
// only the parts whose text changed (see BuildCached). The trees a build
// gets are equal, node for node, to the sequential parser's; a cache
// never changes a build's outcome, only its cost.
//
// Contract: a ParseCache holds only what its last finished build used: at
// most the text of that build's files (Limits.MaxBytes; and a placeholder
// line a file) and their flat trees, 36 bytes a node and the strings
// (Limits.MaxNodes), about six times the text's size (the convergence
// bench's 1,000 routes, 75 KB: 0.5 MB held in all; 10,000: 5.3 MB), so it
// never grows across builds. Only files of cacheMinBytes or more that
// parseSplit's checks accept, and whose sequence it cuts in two chunks or
// more, go through it. It is safe for concurrent
// builds: each looks its parts up in the cache as it is then, and
// replaces its content when it finishes, the last to finish winning. Create it with
// NewParseCache; a nil *ParseCache caches nothing.
type ParseCache struct {
	plan     chunkPlan
	minBytes int // smallest file parsed through the cache

	mu    sync.Mutex
	parts map[string]*cachedPart // by text
}

// cacheMinBytes is the size from which a file goes through a ParseCache:
// a smaller one parses in a few milliseconds or less.
const cacheMinBytes = 16 << 10

// Chunk sizes, in bytes, for the content-defined cuts: a chunk has at
// least chunkMinBytes unless it is the sequence's last, about
// chunkAvgBytes on average, and stops at the first item line after
// chunkMaxBytes. An edit re-parses about one chunk: at ~75 bytes a route
// (the bench's shape), ~27 routes, a few tenths of a millisecond.
const (
	chunkMinBytes = 512
	chunkAvgBytes = 2048
	chunkMaxBytes = 8192
)

// NewParseCache returns an empty ParseCache.
func NewParseCache() *ParseCache {
	return &ParseCache{
		plan:     chunkPlan{min: chunkMinBytes, avg: chunkAvgBytes, max: chunkMaxBytes},
		minBytes: cacheMinBytes,
	}
}

// Size returns how many parts the cache holds, the bytes of their text
// and of their trees.
func (c *ParseCache) Size() (parts, textBytes, treeBytes int) {
	if c == nil {
		return 0, 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.parts {
		textBytes += len(k)
		treeBytes += p.tree.bytes()
	}
	return len(c.parts), textBytes, treeBytes
}

// partSpec says what determines a part's tree: its text and, for the
// rest, the span it was cut for (parseRestText); for a chunk the
// indentation of its items (parseChunkText).
type partSpec struct {
	text              []byte
	rest              bool
	key, first, inset int // inset: the items' indentation
}

// cachedPart is one part's tree, as parsed: for a chunk its root
// sequence, at the chunk's lines; for the rest its document, at the
// rest's lines. It is immutable: builds get trees built from it.
type cachedPart struct {
	text              string
	rest              bool
	key, first, inset int
	tree              flatTree
	seqAt             int // rest: the index of the sequence in the root mapping
}

// matches reports whether p is the tree of sp.
func (p *cachedPart) matches(sp partSpec) bool {
	return p.rest == sp.rest && p.key == sp.key && p.first == sp.first && p.inset == sp.inset &&
		p.text == string(sp.text)
}

// parseSession is one build's use of a ParseCache: the parts its files
// used, which replace the cache's when the build's parse ends (commit).
type parseSession struct {
	c *ParseCache
	// lazy lets parseWith leave the routes list's reused chunks unbuilt
	// (lazyChunk), for a loader: set before the first parse.
	lazy   bool
	mu     sync.Mutex
	used   map[string]*cachedPart
	hits   atomic.Int64 // parts reused
	misses atomic.Int64 // parts parsed
}

// begin starts a build's session; nil for a nil cache.
func (c *ParseCache) begin() *parseSession {
	if c == nil {
		return nil
	}
	return &parseSession{c: c, used: make(map[string]*cachedPart)}
}

// commit makes the parts this session used the cache's content.
func (s *parseSession) commit() {
	if s == nil {
		return
	}
	s.mu.Lock()
	used := s.used
	s.mu.Unlock()
	s.c.mu.Lock()
	s.c.parts = used
	s.c.mu.Unlock()
}

// lookup returns the cached part of each spec, nil where there is none.
func (s *parseSession) lookup(specs []partSpec) []*cachedPart {
	out := make([]*cachedPart, len(specs))
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for i, sp := range specs {
		if p := s.c.parts[string(sp.text)]; p != nil && p.matches(sp) {
			out[i] = p
		}
	}
	return out
}

// keep records that the build used parts.
func (s *parseSession) keep(parts []*cachedPart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		s.used[p.text] = p
	}
}

// chunkPlan sizes content-defined chunks, in bytes (see chunkMinBytes).
type chunkPlan struct{ min, avg, max int }

// cuts returns the chunk starts for the sequence s of b: its first item,
// then each listed cut (s.cuts) at least min bytes after the previous
// chunk's start whose item is chosen (chosen) or that is max bytes or
// more after it. A cut depends on the text from the previous cut to the
// next item only, so an edit moves the cuts near it alone.
func (p chunkPlan) cuts(b []byte, lines []int, s seqSpan) []int {
	out := []int{s.first}
	start := lines[s.first]
	for k := 1; k < len(s.cuts); k++ {
		at := lines[s.cuts[k]]
		if at-start < p.min {
			continue
		}
		end := offsetOf(b, lines, s.stop)
		if k+1 < len(s.cuts) {
			end = lines[s.cuts[k+1]]
		}
		if at-start >= p.max || p.chosen(b[at:end]) {
			out = append(out, s.cuts[k])
			start = at
		}
	}
	return out
}

// chosen reports whether a chunk starts at item, with a probability of
// len(item)/(avg-min) (so that a chunk holds about avg-min bytes after
// its first min whatever the items' sizes), decided by a hash of item.
func (p chunkPlan) chosen(item []byte) bool {
	return uint64(crc32.ChecksumIEEE(item))*uint64(max(1, p.avg-p.min)) < uint64(len(item))<<32
}

// parse parses content, one document, through the cache, on up to
// workers goroutines (this one included). ok is false when the file is
// below the cache's size, when parseSplit's checks refuse it, when its
// sequence is one chunk or when a part does not parse; the caller must
// then parse otherwise. The document
// it returns is the build's own: nothing else holds any of its nodes.
func (s *parseSession) parse(content []byte, workers int) (*yaml.Node, bool) {
	doc, _, ok := s.parseWith(content, workers, false)
	return doc, ok
}

// parseWith is parse that, with lazy, leaves the reused chunks of the
// routes list unbuilt: their items are lazyNode placeholders, which the
// returned lazyItems build a chunk at a time when the loader reads them,
// so that a large policy's whole YAML tree (10,000 routes: ~18 MB) is
// never live at once, only the chunks being loaded. The tree is otherwise
// parse's, and the built items are those parse would give, wrapped as
// parseDocs wraps the tree of a text without marked aliases.
func (s *parseSession) parseWith(content []byte, workers int, lazy bool) (*yaml.Node, lazyItems, bool) {
	if len(content) < s.c.minBytes || !splittableText(content) {
		return nil, nil, false
	}
	lines := lineOffsets(content)
	span, ok := largestSequence(content, lines)
	if !ok {
		return nil, nil, false
	}
	cuts := s.c.plan.cuts(content, lines, span)
	if len(cuts) < 2 {
		// One chunk (no line to cut at, e.g. a comment above every
		// item): every edit would re-parse it whole, and flatten it too.
		return nil, nil, false
	}
	specs := partSpecs(content, lines, span, cuts)
	parts := s.lookup(specs)
	lazy = lazy && string(bytes.TrimRight(lineAt(content, lines, span.key), " ")) == "routes:"
	trees, deferred, ok := s.materialise(specs, parts, span, cuts, workers, lazy)
	if !ok {
		return nil, nil, false
	}
	s.keep(parts)
	doc := trees[0]
	root := doc.Content[0]
	seq := root.Content[parts[0].seqAt]
	if k := root.Content[parts[0].seqAt-1]; len(deferred) > 0 && (k.Kind != yaml.ScalarNode || k.Value != "routes") {
		for i, c := range deferred { // not the routes list after all: build them now
			trees[i] = c.tree.build(c.after, c.delta)
		}
		deferred = nil
	}
	return doc, assemble(seq, trees[1:], deferred), true
}

// partSpecs returns the parts of b cut at cuts: the rest, then the
// chunks.
func partSpecs(b []byte, lines []int, s seqSpan, cuts []int) []partSpec {
	specs := make([]partSpec, 1+len(cuts))
	specs[0] = partSpec{text: restText(b, lines, s), rest: true, key: s.key, first: s.first, inset: s.indent}
	for i := range cuts {
		specs[1+i] = partSpec{text: chunkText(b, lines, s, cuts, i), inset: s.indent}
	}
	return specs
}

// materialise parses the parts missing from parts (nil), storing them
// there, and returns every part's tree at the file's lines, the build's
// own: a parsed part's as parsed, a cached one's built from its flat
// form; the missing parts first, on up to workers goroutines. False if a
// part does not parse.
//
// With lazy, a reused chunk's tree is not built: it is returned in
// deferred (by its index in parts), to be built by the loader.
func (s *parseSession) materialise(specs []partSpec, parts []*cachedPart, span seqSpan, cuts []int, workers int, lazy bool) (
	trees []*yaml.Node, deferred map[int]*lazyChunk, ok bool,
) {
	order := make([]int, 0, len(parts))
	for i, p := range parts {
		if p == nil {
			order = append(order, i)
		}
	}
	s.misses.Add(int64(len(order)))
	s.hits.Add(int64(len(parts) - len(order)))
	for i, p := range parts {
		if p != nil {
			order = append(order, i)
		}
	}
	trees = make([]*yaml.Node, len(parts))
	deferred = map[int]*lazyChunk{}
	for _, i := range order {
		if lazy && i > 0 && parts[i] != nil {
			deferred[i] = &lazyChunk{tree: &parts[i].tree, delta: cuts[i-1] - 1, count: parts[i].tree.items()}
		}
	}
	ok = forEach(len(order), workers, func(j int) bool {
		i := order[j]
		if deferred[i] != nil {
			return true
		}
		after, delta := 0, 0
		if i == 0 {
			after, delta = span.first+1, span.stop-span.first-1
		} else {
			delta = cuts[i-1] - 1
		}
		if parts[i] != nil {
			trees[i] = parts[i].tree.build(after, delta)
			return true
		}
		parts[i], trees[i] = parsePart(specs[i])
		return parts[i] != nil && shiftLines(trees[i], after, delta)
	})
	return trees, deferred, ok
}

// forEach calls fn(0) … fn(n-1) on up to workers goroutines (this one
// included), handing out the indices in order, and reports whether every
// call returned true; it stops handing out after a false.
func forEach(n, workers int, fn func(i int) bool) bool {
	var next atomic.Int64
	var failed atomic.Bool
	work := func() {
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if !fn(i) {
				failed.Store(true)
			}
		}
	}
	var wg sync.WaitGroup
	for range min(workers, n) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return !failed.Load()
}

// parsePart parses the part sp and returns it for the cache and its
// tree, which nothing else holds; nil if it does not parse as parseSplit
// requires or holds an anchor, an alias or a tag.
func parsePart(sp partSpec) (*cachedPart, *yaml.Node) {
	p := &cachedPart{text: string(sp.text), rest: sp.rest, key: sp.key, first: sp.first, inset: sp.inset}
	var tree *yaml.Node
	ok := false
	if sp.rest {
		tree, p.seqAt, ok = parseRestText(sp.text, seqSpan{key: sp.key, first: sp.first, indent: sp.inset})
	} else {
		tree, ok = parseChunkText(sp.text, sp.inset)
	}
	if !ok {
		return nil, nil
	}
	if p.tree, ok = flatten(tree, len(sp.text)); !ok {
		return nil, nil
	}
	return p, tree
}
