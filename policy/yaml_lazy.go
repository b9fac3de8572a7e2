package policy

import (
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
)

// Building the routes list's tree as the loader reads it.
//
// A build through a ParseCache reuses most of a large file's chunks,
// and used to build all their trees before loading: the whole YAML tree
// of a 10,000-route policy (~18 MB of yaml.Node, ~1.8 KB a route) was
// live at once, on top of the served policy, and set the control plane's
// peak memory during a push. The loader's session (parseSession.lazy)
// leaves the reused chunks of the routes list unbuilt instead: each of
// their items is a lazyNode placeholder, and the chunk's tree is built
// when the loader reads its first item, then let go once all its items
// are loaded, so only the chunks being loaded are live.

// lazyItems maps each lazyNode of a file's routes list to the chunk of
// the list it stands for (parseWith).
type lazyItems map[*yaml.Node]*lazyChunk

// lazyChunk is a chunk of the routes list reused from a ParseCache whose
// tree is built when the loader first reads one of its items (take).
type lazyChunk struct {
	tree         *flatTree // the cached part's, immutable
	after, delta int       // the line shift (flatTree.build)
	count        int       // its items
	first        int       // the index of its first item in the list
	once         sync.Once
	items        []*yaml.Node
	left         atomic.Int32 // items not yet released
}

// take returns item i of the list (one of the chunk's), building the
// chunk's items the first time. With release, the chunk forgets it, and
// its tree once every item is released, so that the loaded part of a long
// list can be collected while the rest is loaded. Different items may be
// taken concurrently.
func (c *lazyChunk) take(i int, release bool) *yaml.Node {
	c.once.Do(c.build)
	j := i - c.first
	n := c.items[j]
	if release {
		c.items[j] = nil
		if c.left.Add(-1) == 0 {
			c.items = nil // it shares its array with the items' children
		}
	}
	return n
}

// build builds the chunk's items, wrapped as parseMarked wraps a tree
// from parseSplit: a cached tree has no anchor, tag or explicit key, and
// a chunk is deferred only when no alias was marked (splitParse), so the
// unmarked text is not needed.
func (c *lazyChunk) build() {
	seq := c.tree.build(c.after, c.delta)
	w := &sourceText{noExplicitKeys: true}
	w.wrap(seq, false)
	c.items = seq.Content
}

// assemble sets the items of seq to those of the chunks' trees, in order,
// and returns the placeholders of the deferred chunks (keyed by their
// index in trees+1), nil if none.
func assemble(seq *yaml.Node, trees []*yaml.Node, deferred map[int]*lazyChunk) lazyItems {
	total := 0
	for i, chunk := range trees {
		if c := deferred[i+1]; c != nil {
			total += c.count
		} else {
			total += len(chunk.Content)
		}
	}
	seq.Content = make([]*yaml.Node, 0, total)
	var out lazyItems
	for i, chunk := range trees {
		c := deferred[i+1]
		if c == nil {
			seq.Content = append(seq.Content, chunk.Content...)
			continue
		}
		if out == nil {
			out = make(lazyItems, len(deferred))
		}
		c.first = len(seq.Content)
		c.left.Store(int32(c.count))
		ph := &yaml.Node{Kind: lazyNode}
		out[ph] = c
		for range c.count {
			seq.Content = append(seq.Content, ph)
		}
	}
	return out
}
