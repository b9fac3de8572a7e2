package policy

import (
	"math"
	"slices"
	"unsafe"

	"go.yaml.in/yaml/v3"
)

// flatTree is a YAML tree as a ParseCache keeps it: its nodes in one
// array without pointers, in pre-order, and their strings in one string.
// Kept as parsed, a tree takes ~27 bytes a byte of text (the bench's
// routes: ~2 KB a route, each node and string an object of its own, all
// scanned by the collector); flat, about a quarter of that, in three
// objects the collector does not scan.
type flatTree struct {
	nodes []flatNode
	notes []flatNotes // the comments of the nodes that have some
	strs  string
}

// bytes returns the memory t holds.
func (t *flatTree) bytes() int {
	return len(t.nodes)*int(unsafe.Sizeof(flatNode{})) + len(t.notes)*int(unsafe.Sizeof(flatNotes{})) + len(t.strs)
}

// flatNode is one node of a flatTree: yaml.Node without its anchor and
// alias (a cached tree has none), its strings as ranges of strs.
type flatNode struct {
	kind, style  uint8
	line, column int32
	children     int32 // -1: Content is nil
	notes        int32 // its comments' index in notes; -1: none
	tag, value   strRef
}

// flatNotes are a node's comments.
type flatNotes struct{ head, line, foot strRef }

// strRef is the string strs[off : off+n].
type strRef struct{ off, n uint32 }

// flatten returns n's tree as a flatTree; false if a node has an anchor
// or an explicit tag, is an alias or does not fit (a kind, style or
// position too large: a cached part is far smaller). textLen, the size
// of the text n was parsed from, sizes the strings' buffer.
func flatten(n *yaml.Node, textLen int) (flatTree, bool) {
	f := flattener{
		nodes: make([]flatNode, 0, countNodes(n)),
		buf:   make([]byte, 0, textLen),
		strs:  make(map[string]strRef, 64),
	}
	if !f.add(n) {
		return flatTree{}, false
	}
	return flatTree{nodes: f.nodes, notes: slices.Clip(f.notes), strs: string(f.buf)}, true
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// flattener builds a flatTree, each distinct string once.
type flattener struct {
	nodes []flatNode
	notes []flatNotes
	buf   []byte
	strs  map[string]strRef
}

func (f *flattener) add(n *yaml.Node) bool {
	if n.Anchor != "" || n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle != 0 ||
		n.Kind > math.MaxUint8 || n.Style > math.MaxUint8 || n.Line > math.MaxInt32 || n.Column > math.MaxInt32 ||
		len(n.Content) > math.MaxInt32 {
		return false
	}
	fn := flatNode{
		kind: uint8(n.Kind), style: uint8(n.Style), line: int32(n.Line), column: int32(n.Column),
		children: int32(len(n.Content)), notes: -1, tag: f.str(n.Tag), value: f.str(n.Value),
	}
	if n.Content == nil {
		fn.children = -1
	}
	if hasComments(n) {
		fn.notes = int32(len(f.notes))
		f.notes = append(f.notes, flatNotes{f.str(n.HeadComment), f.str(n.LineComment), f.str(n.FootComment)})
	}
	f.nodes = append(f.nodes, fn)
	for _, c := range n.Content {
		if !f.add(c) {
			return false
		}
	}
	return len(f.buf) <= math.MaxUint32
}

// str returns s's range in the strings, adding it the first time.
func (f *flattener) str(s string) strRef {
	if s == "" {
		return strRef{}
	}
	if r, ok := f.strs[s]; ok {
		return r
	}
	r := strRef{off: uint32(len(f.buf)), n: uint32(len(s))}
	f.buf = append(f.buf, s...)
	f.strs[s] = r
	return r
}

// items returns the children of t's root: a cached chunk's items.
func (t *flatTree) items() int {
	if len(t.nodes) == 0 {
		return 0
	}
	return max(int(t.nodes[0].children), 0)
}

// build returns a new tree equal to t's, with delta added to every line
// after line after, in two allocations (its nodes, its children). Its
// strings share t's memory (strings are immutable); nothing else is
// shared, and an empty Content has no capacity, so whatever changes the
// tree (the loader does) leaves t as it was.
func (t *flatTree) build(after, delta int) *yaml.Node {
	b := treeBuilder{t: t, nodes: make([]yaml.Node, len(t.nodes)), refs: make([]*yaml.Node, max(len(t.nodes)-1, 0))}
	return b.node(after, delta)
}

// treeBuilder builds a tree from a flatTree, node after node.
type treeBuilder struct {
	t     *flatTree
	next  int // the next node of t and of nodes
	nodes []yaml.Node
	refs  []*yaml.Node
}

// node builds the next node and its subtree. It sets only the fields that
// are not zero (nodes is zeroed): fewer pointer writes, each behind the
// collector's write barrier while it marks.
func (b *treeBuilder) node(after, delta int) *yaml.Node {
	fn, n := &b.t.nodes[b.next], &b.nodes[b.next]
	b.next++
	n.Kind, n.Style, n.Line, n.Column = yaml.Kind(fn.kind), yaml.Style(fn.style), int(fn.line), int(fn.column)
	if n.Line > after {
		n.Line += delta
	}
	n.Tag, n.Value = b.str(fn.tag), b.str(fn.value)
	if fn.notes >= 0 {
		c := &b.t.notes[fn.notes]
		n.HeadComment, n.LineComment, n.FootComment = b.str(c.head), b.str(c.line), b.str(c.foot)
	}
	if fn.children < 0 {
		return n
	}
	k := int(fn.children)
	n.Content, b.refs = b.refs[:k:k], b.refs[k:]
	for i := range k {
		n.Content[i] = b.node(after, delta)
	}
	return n
}

func (b *treeBuilder) str(r strRef) string {
	if r.n == 0 {
		return ""
	}
	return b.t.strs[r.off : r.off+r.n]
}
