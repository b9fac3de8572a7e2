package policy

import (
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/parallel"
)

// loadRoutesMin is the length from which a file's routes list is loaded
// on several goroutines.
const loadRoutesMin = 512

// appendRoutes is appendList for a file's top-level routes list. A long
// list in a file without anchors (so that no route reads another's nodes)
// is split into contiguous chunks loaded on goroutines of their own, each
// by a loader that reports into a source of its own; the chunks' records,
// failures and diagnostics are then merged in list order, so the Policy,
// its positions and the diagnostics are those of a sequential load.
func appendRoutes(l *loader, path string, n *yaml.Node, dst []Route) []Route {
	seq, ok := l.sequence(path, n)
	if !ok {
		return dst
	}
	workers := l.spread(len(seq.Content), loadRoutesMin)
	if l.keepTree || workers <= 1 {
		return appendList(l, path, seq, dst, l.schema.route)
	}
	offset := len(dst)
	dst = append(slices.Grow(dst, len(seq.Content)), make([]Route, len(seq.Content))...)
	chunks := make([]*loader, workers)
	parallel.Chunks(len(seq.Content), workers, func(c, lo, hi int) {
		sub := l.chunkLoader()
		chunks[c] = sub
		for i := lo; i < hi; i++ {
			loadItem(sub, path, seq, offset, i, &dst[offset+i], l.schema.route)
		}
	})
	for _, sub := range chunks {
		if sub != nil {
			l.absorb(sub)
		}
	}
	return dst
}

// chunkLoader returns a loader for part of l's current list: it shares
// l's read-only state (schema, file, anchors) and records into a source of
// its own that knows the same files, for absorb.
func (l *loader) chunkLoader() *loader {
	src := newSource()
	src.files = slices.Clone(l.p.src.files)
	return &loader{p: &Policy{src: src}, schema: l.schema, file: l.file, anchors: l.anchors,
		keepTree: l.keepTree, spread: l.spread, lazy: l.lazy}
}

// absorb merges what the chunk loader sub found into l, as if l had loaded
// the chunk itself: its records in order, its failed paths, partial, its
// diagnostics in order.
func (l *loader) absorb(sub *loader) {
	dst, src := l.p.src, sub.p.src
	for _, chunk := range src.records {
		for _, rec := range chunk {
			dst.add(rec.path, int(rec.line), int(rec.column))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(src.failed)) {
		dst.markFailed(path)
	}
	dst.partial = dst.partial || src.partial
	l.diags = append(l.diags, sub.diags...)
}
