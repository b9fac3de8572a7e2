package policy_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/policy"
)

// cacheDoc is a generated file (genSplitFile's shape) kept as its items,
// so that a test can edit one item and build again.
type cacheDoc struct {
	head, tail string
	items      []string
	indent     int
	crlf       bool
	next       int // the number of the next new item
}

func newCacheDoc(sh splitShape, seed uint64) *cacheDoc {
	rng := rand.New(rand.NewPCG(seed, 5))
	d := &cacheDoc{
		head:   "# generated\nversion: 1\nbackends:\n  - name: b\n    endpoints: [\"10.0.0.1:80\"]\n\nroutes:\n",
		indent: sh.indent, crlf: sh.crlf, next: sh.items + 1,
	}
	for i := range sh.items {
		k := 0
		if sh.features > 0 && i > 0 && rng.IntN(3) == 0 {
			k = rng.IntN(sh.features)
		}
		d.items = append(d.items, d.item(k, i))
	}
	d.items = append(d.items, d.item(0, sh.items))
	if sh.after {
		d.tail = "gateways:\n  - name: g\n    listeners: [{name: l, port: 1}]\n# trailing comment\n"
	}
	return d
}

// item fills splitItems[k] as item number i.
func (d *cacheDoc) item(k, i int) string {
	ind := strings.Repeat(" ", d.indent)
	return fillItem(splitItems[k], ind, ind+"  ", i)
}

func (d *cacheDoc) text() []byte {
	s := d.head + strings.Join(d.items, "") + d.tail
	if d.crlf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return []byte(s)
}

// Edits of a cacheDoc: k picks a template of splitItems (0 is a plain
// route), at an item.
func insertItem(at, k int) func(*cacheDoc) {
	return func(d *cacheDoc) { d.items = slices.Insert(d.items, at, d.item(k, d.next)); d.next++ }
}

func appendItem(k int) func(*cacheDoc) {
	return func(d *cacheDoc) { d.items = append(d.items, d.item(k, d.next)); d.next++ }
}

func deleteItem(at int) func(*cacheDoc) {
	return func(d *cacheDoc) { d.items = slices.Delete(d.items, at, at+1) }
}

func replaceItem(at, k int) func(*cacheDoc) {
	return func(d *cacheDoc) { d.items[at] = d.item(k, d.next); d.next++ }
}

// rawItem replaces item at with text, at the items' indentation.
func rawItem(at int, text string) func(*cacheDoc) {
	return func(d *cacheDoc) { d.items[at] = strings.Repeat(" ", d.indent) + text }
}

func moveItem(from, to int) func(*cacheDoc) {
	return func(d *cacheDoc) {
		it := d.items[from]
		d.items = slices.Insert(slices.Delete(d.items, from, from+1), to, it)
	}
}

func setHead(head string) func(*cacheDoc) { return func(d *cacheDoc) { d.head = head } }

func setTail(tail string) func(*cacheDoc) { return func(d *cacheDoc) { d.tail = tail } }

// cacheStep is one build of a sequence: the edit before it, whether the
// cache must take the file, and how many parts it may parse at most.
type cacheStep struct {
	edit      func(*cacheDoc)
	taken     bool
	maxMisses int
}

// TestParseCacheEdits builds a file again and again through one
// ParseCache, an edit before each build (routes inserted, appended,
// deleted, edited, moved; comments, block and multi-line scalars, flow
// collections; the text around the sequence), and checks that every
// build's tree is the sequential parser's node for node (Kind, Style,
// Tag, Value, Anchor, comments, Line, Column, Content), raw and as the
// loader wraps it, that the tree handed out is a copy (CompareCachedParse
// overwrites it before the next build), and that an edit re-parses only
// the parts around it. A file the cache refuses (an anchor, a syntax
// error, a tab) falls back to the sequential parse,
// and the next good file is taken again.
func TestParseCacheEdits(t *testing.T) {
	plain := splitShape{items: 300, indent: 2}
	mixed := splitShape{items: 300, indent: 2, features: allSplitFeatures, after: true}
	all := 1 << 30
	tests := []struct {
		name  string
		shape splitShape
		steps []cacheStep
	}{
		{"append a route per build (the push)", plain, []cacheStep{
			{appendItem(0), true, 2}, {appendItem(0), true, 2}, {appendItem(0), true, 2},
			{appendItem(0), true, 2}, {appendItem(0), true, 2}, {appendItem(0), true, 2},
		}},
		{"edit routes", mixed, []cacheStep{
			{replaceItem(150, 0), true, 3}, {replaceItem(10, 1), true, 3}, {replaceItem(290, 2), true, 3},
			{replaceItem(1, 19), true, 3}, {replaceItem(200, 9), true, 3}, {replaceItem(150, 6), true, 3},
		}},
		{"insert and delete routes", mixed, []cacheStep{
			{insertItem(100, 0), true, 3}, {deleteItem(100), true, 3}, {insertItem(1, 3), true, 3},
			{deleteItem(250), true, 3}, {insertItem(299, 5), true, 3}, {deleteItem(0), true, 3},
		}},
		{"move routes", mixed, []cacheStep{
			{moveItem(20, 250), true, 6}, {moveItem(250, 20), true, 6}, {moveItem(299, 0), true, 6},
		}},
		{"comments", mixed, []cacheStep{
			{insertItem(120, 13), true, 3}, {insertItem(60, 20), true, 3}, {replaceItem(61, 1), true, 3},
			{insertItem(200, 17), true, 3}, {deleteItem(120), true, 3},
		}},
		{"block scalars", plain, []cacheStep{
			{replaceItem(100, 1), true, 3}, {replaceItem(101, 2), true, 3}, {replaceItem(102, 3), true, 3},
			{replaceItem(150, 21), true, 3}, {replaceItem(151, 19), true, 3}, {replaceItem(100, 0), true, 3},
		}},
		{"the text around the sequence", mixed, []cacheStep{
			{setHead("version: 1\nroutes:\n"), true, 1}, {setTail(""), true, 1},
			{setTail("gateways: []\nz: |\n  text\n"), true, 1},
			{setHead("# h\nversion: 1\nbackends: [{name: b}]\nroutes:\n\n"), true, 1},
		}},
		{"a file that falls back, then good ones", plain, []cacheStep{
			{rawItem(100, "- &a x\n"), false, all}, {replaceItem(100, 0), true, all},
			{rawItem(300, "- a:\tb\n"), false, all}, {replaceItem(300, 0), true, all},
			{replaceItem(5, 0), true, 3},
		}},
		{"a failing file, then a good one", plain, []cacheStep{
			{rawItem(150, "- \"unclosed\n"), false, all}, {replaceItem(150, 0), true, all},
			{rawItem(20, "- {a: [}\n"), false, all}, {replaceItem(20, 0), true, all},
			{appendItem(0), true, 2},
		}},
		{"items at the key's indentation, CRLF", splitShape{items: 300, indent: 0, features: allSplitFeatures, crlf: true}, []cacheStep{
			{insertItem(100, 0), true, 3}, {replaceItem(7, 4), true, 3}, {deleteItem(290), true, 3}, {appendItem(0), true, 2},
		}},
		{"odd indentation", splitShape{items: 300, indent: 3, features: allSplitFeatures}, []cacheStep{
			{insertItem(100, 7), true, 3}, {replaceItem(7, 16), true, 3}, {moveItem(3, 200), true, 6},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := policy.NewSmallParseCache(128, 512, 2048)
			d := newCacheDoc(tt.shape, 1)
			steps := append([]cacheStep{{func(*cacheDoc) {}, true, all}}, tt.steps...)
			for i, st := range steps {
				st.edit(d)
				text := d.text()
				stats, err := policy.CompareCachedParse(c, text, 1+i%3)
				if err != nil {
					t.Fatalf("build %d: %v\n%s", i, err, text)
				}
				if stats.Taken != st.taken || stats.Misses > st.maxMisses {
					t.Fatalf("build %d: %+v, want taken %v and at most %d parts parsed", i, stats, st.taken, st.maxMisses)
				}
			}
		})
	}
}

// benchPolicy renders the convergence bench's policy shape (flow-style
// routes) with n routes, route i rendered by route(i).
func benchPolicy(n int, route func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n  - name: bench\n    listeners: [{name: http, port: 8080, address: 127.0.0.1}]\nroutes:\n")
	for i := range n {
		b.WriteString(route(i))
	}
	b.WriteString("backends:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - {name: b%d, endpoints: [\"127.0.0.1:9\"]}\n", i)
	}
	return []byte(b.String())
}

func benchRoute(i int) string {
	return fmt.Sprintf("  - {name: r%d, match: {pathPrefix: /svc%d/r%d}, backend: b%d, auth: none}\n", i, i%10, i, i%10)
}

// withRoute returns benchRoute with route at replaced by text.
func withRoute(at int, text string) func(int) string {
	return func(i int) string {
		if i == at {
			return text
		}
		return benchRoute(i)
	}
}

// TestBuildCachedMatchesBuild builds a sequence of policies through one
// ParseCache and checks that Load's Policy (positions and failures
// included), and Build's config and diagnostics (file:line:col), are
// those of an uncached build: valid policies, load errors (unknown field,
// wrong type), validation errors (duplicate name, unknown backend), a
// syntax error, several files; an error in a reused chunk that moved; a
// list long enough to be loaded on several goroutines, whose reused chunks
// are built as they are loaded (lazyChunk), some shared by two goroutines.
func TestBuildCachedMatchesBuild(t *testing.T) {
	one := func(route func(int) string) []policy.File {
		return []policy.File{{Name: "p.yaml", Content: benchPolicy(400, route)}}
	}
	long := func(route func(int) string) []policy.File {
		return []policy.File{{Name: "p.yaml", Content: benchPolicy(1500, route)}}
	}
	// after shifts the routes of route down by k new ones, so that the
	// chunks after them are reused at other lines.
	after := func(k int, route func(int) string) []policy.File {
		return []policy.File{{Name: "p.yaml", Content: benchPolicy(400+k, func(i int) string {
			if i < k {
				return benchRoute(5000 + i)
			}
			return route(i - k)
		})}}
	}
	tests := []struct {
		name  string
		files []policy.File
	}{
		{"valid", one(benchRoute)},
		{"an error", one(withRoute(300, "  - {name: r300, match: {pathPrefix: 7}, backend: b0, timeout: [1]}\n"))},
		{"the error, 10 lines lower", after(10, withRoute(300, "  - {name: r300, match: {pathPrefix: 7}, backend: b0, timeout: [1]}\n"))},
		{"the error, 3 lines lower", after(3, withRoute(300, "  - {name: r300, match: {pathPrefix: 7}, backend: b0, timeout: [1]}\n"))},
		{"unknown field", one(withRoute(200, "  - {name: r200, nmae: x, backend: b0}\n"))},
		{"wrong type", one(withRoute(390, "  - {name: r390, backend: [b0]}\n"))},
		{"duplicate name", one(withRoute(5, benchRoute(6)))},
		{"unknown backend", one(withRoute(250, "  - {name: r250, backend: nope}\n"))},
		{"syntax error", one(withRoute(300, "  - {name: r300, backend: b0\n"))},
		{"valid again", one(benchRoute)},
		{"long", long(benchRoute)},
		{"long, again", long(benchRoute)},
		{"long, an error", long(withRoute(1100, "  - {name: r1100, match: {pathPrefix: 7}, backend: b0, timeout: [1]}\n"))},
		{"long, unknown field", long(withRoute(700, "  - {name: r700, nmae: x, backend: b0}\n"))},
		{"long, an unknown alias", long(withRoute(800, "  - {name: r800, backend: *nope}\n"))},
		{"long, the unknown alias again", long(withRoute(800, "  - {name: r800, backend: *nope}\n"))},
		{"long, a value starting with U+E000", long(withRoute(600, "  - {name: r600, backend: \uE000nope}\n"))},
		{"long, that value again", long(withRoute(600, "  - {name: r600, backend: \uE000nope}\n"))},
		{"two files", append(one(benchRoute), policy.File{Name: "q.yaml", Content: benchPolicy(300, func(i int) string {
			return benchRoute(1000 + i)
		})})},
		{"two files, an error in the second", append(one(benchRoute), policy.File{Name: "q.yaml", Content: benchPolicy(300,
			withRoute(120, "  - {name: r1120, match: {pathPrefx: /x}, backend: b0}\n"))})},
	}
	c := policy.NewParseCache()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.files[0].Content) < policy.CacheMinBytes {
				t.Fatalf("%d bytes: below the cache's size", len(tt.files[0].Content))
			}
			want, wantDs := policy.Load(tt.files)
			got, ds := policy.LoadCached(tt.files, c)
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(ds, wantDs) {
				t.Fatalf("Load through the cache differs:\n%v\nwant\n%v", ds, wantDs)
			}
			wantCfg, wantDs := policy.Build(tt.files)
			cfg, ds := policy.BuildCached(tt.files, c)
			if !reflect.DeepEqual(ds, wantDs) || (cfg == nil) != (wantCfg == nil) || cfg != nil && cfg.Hash() != wantCfg.Hash() {
				t.Fatalf("Build through the cache differs:\n%v\nwant\n%v", ds, wantDs)
			}
		})
	}
}

// TestParseCacheHoldsLastBuildOnly checks the cache's memory bound: after
// each of many builds of different policies, it holds at most the text of
// that build's files (and the placeholder the rest holds instead of the
// sequence), in no more parts than chunks can be cut, and trees of less
// than eight times that text; a build of a file below its size empties
// it.
func TestParseCacheHoldsLastBuildOnly(t *testing.T) {
	c := policy.NewParseCache()
	rng := rand.New(rand.NewPCG(3, 9))
	for build := range policy.RaceSample(make([]int, 40)) {
		n := 250 + rng.IntN(1500)
		off := rng.IntN(100000)
		text := benchPolicy(n, func(i int) string { return benchRoute(off + i) })
		if _, ds := policy.BuildCached([]policy.File{{Name: "p.yaml", Content: text}}, c); ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		parts, size, trees := c.Size()
		if parts == 0 || size > len(text)+16 || parts > len(text)/512+2 || trees > 8*len(text) {
			t.Fatalf("build %d (%d bytes): the cache holds %d parts, %d bytes of text, %d of trees", build, len(text), parts, size, trees)
		}
	}
	policy.BuildCached([]policy.File{{Name: "p.yaml", Content: benchPolicy(10, benchRoute)}}, c)
	if parts, size, trees := c.Size(); parts != 0 || size != 0 || trees != 0 {
		t.Fatalf("after a small file the cache holds %d parts, %d bytes of text, %d of trees", parts, size, trees)
	}
}

// TestParseCacheConcurrentBuilds runs builds of different policies
// through one ParseCache at once (as a dry run may run during a push) and
// checks each against the uncached build.
func TestParseCacheConcurrentBuilds(t *testing.T) {
	var variants [][]policy.File
	for v := range 4 {
		variants = append(variants, []policy.File{{Name: "p.yaml", Content: benchPolicy(300+v, benchRoute)}})
	}
	want := make([]string, len(variants))
	for i, files := range variants {
		cfg, ds := policy.Build(files)
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		want[i] = cfg.Hash()
	}
	c := policy.NewParseCache()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Go(func() {
			for k := range 4 {
				v := (g + k) % len(variants)
				if cfg, ds := policy.BuildCached(variants[v], c); ds.HasErrors() || cfg.Hash() != want[v] {
					errs <- fmt.Errorf("goroutine %d, build %d: %v", g, k, ds.Err())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestParseCacheLeavesUncutFilesAlone: a policy with a comment above each
// route has no line the cache may cut at (an item line must follow a
// content line, see parseSplit), so its sequence is one chunk that every
// edit changes. The cache must leave such a file to the plain parse:
// through the cache it was parsed whole and flattened at every build
// (1,000 routes: 14.0 ms of CPU a build instead of 11.3 ms, 4.1 MB
// allocated instead of 3.3 MB) and held for nothing. The build is the
// uncached one all the same.
func TestParseCacheLeavesUncutFilesAlone(t *testing.T) {
	policyWith := func(comment string) []policy.File {
		return []policy.File{{Name: "p.yaml", Content: benchPolicy(400, func(i int) string {
			return comment + benchRoute(i)
		})}}
	}
	c := policy.NewParseCache()
	for _, tt := range []struct {
		name  string
		files []policy.File
		parts bool
	}{
		{"routes", policyWith(""), true},
		{"a comment above each route", policyWith("  # a route\n"), false},
		{"routes again", policyWith(""), true},
	} {
		wantCfg, wantDs := policy.Build(tt.files)
		cfg, ds := policy.BuildCached(tt.files, c)
		if ds.HasErrors() || wantDs.HasErrors() || cfg.Hash() != wantCfg.Hash() {
			t.Fatalf("%s: the build differs from the uncached one: %v", tt.name, ds.Err())
		}
		if parts, _, _ := c.Size(); (parts > 0) != tt.parts {
			t.Fatalf("%s: the cache holds %d parts after the build, want some: %v", tt.name, parts, tt.parts)
		}
	}
}
