package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The loader reads the tree that go.yaml.in/yaml/v3 builds (yaml.Node),
// with three kinds of node of its own that parseYAML adds, so that the
// tree says what the policy's diagnostics need: a node's properties and an
// explicit key are nodes of their own, each at its own position, wrapping
// the value, which is then at the position of its content.
const (
	// anchorNode is `&name value`: Value is the name, Content[0] the value.
	anchorNode yaml.Kind = 100 + iota
	// tagNode is `!tag value`: Value is the tag as written, Content[0] the
	// value.
	tagNode
	// explicitKeyNode is a key written after "?": Content[0] is the key.
	explicitKeyNode
	// lazyNode stands for an item of the routes list that a build through
	// a ParseCache has not built yet (see lazyChunk); only loadItem reads
	// it, through loader.item.
	lazyNode
)

// parseYAML parses content to one node per document, keeping duplicate
// keys so the walk can report them with the rest, and reports whether any
// node has an anchor. A panic in the parser
// becomes an error: a policy file must never crash the control plane.
// With workers > 1, a file of splitMinBytes or more may be parsed by that
// many goroutines (see parseSplit); with a session (nil for none), a file
// it takes reuses the trees of the parts of the last build's files whose
// text did not change (see ParseCache). The result is the same.
func parseYAML(content []byte, workers int, sess *parseSession) (res parseResult) {
	defer func() {
		if r := recover(); r != nil {
			res = parseResult{err: fmt.Errorf("YAML parser failed: %v", r)}
		}
	}()
	if len(content) < splitMinBytes {
		workers = 1
	}
	orig := content
	for range maxUnknownAliases {
		res = parseMarked(content, orig, workers, sess)
		name, ok := unknownAnchor(res.err)
		if !ok {
			return res
		}
		if content, ok = markAlias(content, name); !ok {
			return parseResult{err: res.err}
		}
	}
	return parseResult{err: res.err}
}

// maxUnknownAliases bounds how many unknown aliases parseYAML marks
// (each costs a parse) before it reports the parser's error.
const maxUnknownAliases = 8

// parseDocs parses content as parseYAML does: through sess when it takes
// the file, else in parallel when workers > 1 and parseSplit can
// (whatever content's size), else sequentially.
func parseDocs(content []byte, workers int, sess *parseSession) ([]*yaml.Node, bool, error) {
	res := parseMarked(content, content, workers, sess)
	return res.docs, res.anchors, res.err
}

// parseMarked is parseDocs of content, which is orig after markAlias (the
// same text when nothing was marked). With a lazy session
// (parseSession.lazy) and nothing marked, the routes list may hold
// lazyNode items, which res.lazy builds (a lazy chunk is wrapped without
// the unmarked text, which tells marked aliases apart).
func parseMarked(content, orig []byte, workers int, sess *parseSession) parseResult {
	src := newSourceText(content)
	marked := len(orig) != len(content)
	if marked {
		src.unmarked = newSourceText(orig)
	}
	if doc, lazy, ok := splitParse(content, workers, sess, !marked); ok {
		src.noExplicitKeys = true // splittableText refused them
		return parseResult{docs: []*yaml.Node{src.wrap(doc.Content[0], false)}, anchors: src.anchors, lazy: lazy}
	}
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		doc := new(yaml.Node)
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return parseResult{docs: docs, anchors: src.anchors}
		}
		if err != nil {
			return parseResult{err: err}
		}
		var body *yaml.Node
		if len(doc.Content) > 0 {
			body = src.wrap(doc.Content[0], false)
		}
		docs = append(docs, body)
	}
}

// splitParse parses content through sess (when not nil) or parseSplit;
// false when neither takes it. With mayDefer, a lazy session may leave
// the routes list's reused chunks to the loader (parseWith).
func splitParse(content []byte, workers int, sess *parseSession, mayDefer bool) (*yaml.Node, lazyItems, bool) {
	if sess != nil {
		if doc, lazy, ok := sess.parseWith(content, workers, sess.lazy && mayDefer); ok {
			return doc, lazy, true
		}
	}
	doc, ok := parseSplit(content, workers)
	return doc, nil, ok
}

// The parser refuses an alias to an anchor it has not seen; the loader
// reports it, at the alias, as it reports an alias to an anchor in a field
// it does not read. parseYAML parses again with each such alias `*name`
// rewritten to the plain scalar aliasMark+"name" (as many characters, so
// every position stays), which wrap turns back into an alias node.
const aliasMark = "\uE000"

var unknownAnchorErr = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)

func unknownAnchor(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	m := unknownAnchorErr.FindStringSubmatch(err.Error())
	if m == nil || m[1] == "" {
		return "", false
	}
	return m[1], true
}

// markAlias rewrites each alias `*name` of content (at a token's start) to
// aliasMark+"name", in a copy; false when there is none.
func markAlias(content []byte, name string) ([]byte, bool) {
	alias := "*" + name
	var out []byte
	for i := 0; i < len(content); {
		j := bytes.Index(content[i:], []byte(alias))
		if j < 0 {
			break
		}
		j += i
		end := j + len(alias)
		startOK := j == 0 || strings.IndexByte(" \t\n[{,:-?", content[j-1]) >= 0
		endOK := end == len(content) || strings.IndexByte(" \t\r\n,]}", content[end]) >= 0
		if startOK && endOK {
			if out == nil {
				out = slices.Clone(content)
			}
			out = slices.Replace(out, j+len(out)-len(content), j+len(out)-len(content)+1, []byte(aliasMark)...)
		}
		i = end
	}
	return out, out != nil
}

// syntaxLine matches where the parser says a syntax error is.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError splits a parser error into its message and line (0 when the
// parser does not say).
func syntaxError(err error) (msg string, line int) {
	msg = err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return msg[len(m[0]):], line
	}
	return strings.TrimPrefix(msg, "yaml: "), 0
}

// sourceText finds byte offsets of the parser's line:column positions
// (columns count characters) in one file's content, and back, in constant
// time on ASCII lines and logarithmic time on others, so that a policy
// written on one long line costs no more than one written on many.
type sourceText struct {
	b          []byte
	lineStarts []int         // offset of each line's first byte; built on first use
	nonASCII   map[int]bool  // lines (0-based) holding a byte >= 0x80
	runeStarts map[int][]int // for such a line, the offset of each of its characters
	anchors    bool          // some node has an anchor
	// unmarked is the text before markAlias rewrote aliases (nil when it
	// did not): a scalar starting with aliasMark is an alias only where
	// that text has a "*".
	unmarked *sourceText
	// noExplicitKeys is set when the text has no "?" that could be an
	// explicit key's indicator (hasExplicitKey), so wrap need not look.
	noExplicitKeys bool
}

func newSourceText(b []byte) *sourceText { return &sourceText{b: b} }

// index builds lineStarts and nonASCII.
func (s *sourceText) index() {
	if s.lineStarts != nil {
		return
	}
	s.lineStarts, s.nonASCII = []int{0}, map[int]bool{}
	for i, c := range s.b {
		switch {
		case c == '\n':
			s.lineStarts = append(s.lineStarts, i+1)
		case c >= utf8.RuneSelf:
			s.nonASCII[len(s.lineStarts)-1] = true
		}
	}
}

// runes returns the offsets of the characters of the non-ASCII line j.
func (s *sourceText) runes(j int) []int {
	if r, ok := s.runeStarts[j]; ok {
		return r
	}
	if s.runeStarts == nil {
		s.runeStarts = map[int][]int{}
	}
	end := len(s.b)
	if j+1 < len(s.lineStarts) {
		end = s.lineStarts[j+1]
	}
	var r []int
	for i := s.lineStarts[j]; i < end; {
		r = append(r, i)
		_, size := utf8.DecodeRune(s.b[i:end])
		i += size
	}
	s.runeStarts[j] = r
	return r
}

// offset returns the byte offset of line:col (both 1-based).
func (s *sourceText) offset(line, col int) int {
	s.index()
	if line < 1 || line > len(s.lineStarts) || col < 1 {
		return len(s.b)
	}
	j := line - 1
	if !s.nonASCII[j] {
		return min(s.lineStarts[j]+col-1, len(s.b))
	}
	r := s.runes(j)
	if col-1 < len(r) {
		return r[col-1]
	}
	end := len(s.b)
	if j+1 < len(s.lineStarts) {
		end = s.lineStarts[j+1]
	}
	return end
}

// position returns the line:column of offset i.
func (s *sourceText) position(i int) (line, col int) {
	s.index()
	j := max(sort.SearchInts(s.lineStarts, i+1)-1, 0) // the last line starting at or before i
	if !s.nonASCII[j] {
		return j + 1, i - s.lineStarts[j] + 1
	}
	return j + 1, sort.SearchInts(s.runes(j), i) + 1
}

// wrap adds the loader's own nodes to n's tree (see anchorNode) and returns
// n, or the node that now stands for it.
func (s *sourceText) wrap(n *yaml.Node, isKey bool) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := range n.Content {
			n.Content[i] = s.wrap(n.Content[i], i%2 == 0)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if item.Kind == yaml.ScalarNode && item.Style == 0 && item.Value == "" {
				item.Column++ // an empty item is after its "- "
			}
			n.Content[i] = s.wrap(item, false)
		}
	}
	if n.Kind == yaml.ScalarNode && n.Style == 0 && strings.HasPrefix(n.Value, aliasMark) && s.markedAlias(n) {
		name, _, _ := strings.Cut(n.Value[len(aliasMark):], " ")
		n.Kind, n.Value = yaml.AliasNode, name
	}
	out := n
	s.anchors = s.anchors || n.Anchor != ""
	if n.Anchor != "" || n.Style&yaml.TaggedStyle != 0 {
		out = s.properties(n)
	}
	if isKey && !s.noExplicitKeys && s.explicitKey(out) {
		out = &yaml.Node{Kind: explicitKeyNode, Line: out.Line, Column: out.Column, Content: []*yaml.Node{out}}
		s.moveBack(out)
	}
	return out
}

// markedAlias reports whether the plain scalar n, which starts with
// aliasMark, is an alias markAlias rewrote rather than text that starts
// with U+E000 (the marking keeps every line and column).
func (s *sourceText) markedAlias(n *yaml.Node) bool {
	if s.unmarked == nil {
		return false
	}
	i := s.unmarked.offset(n.Line, n.Column)
	return i < len(s.unmarked.b) && s.unmarked.b[i] == '*'
}

// properties wraps n in an anchorNode and a tagNode, in the order they
// are written, and moves n to where its content starts.
func (s *sourceText) properties(n *yaml.Node) *yaml.Node {
	i := s.offset(n.Line, n.Column)
	var props []*yaml.Node
	for i < len(s.b) && (s.b[i] == '&' || s.b[i] == '!') {
		end := i
		for end < len(s.b) && !isSpaceByte(s.b[end]) && !(s.b[end] == ',' || s.b[end] == ']' || s.b[end] == '}') {
			end++
		}
		line, col := s.position(i)
		p := &yaml.Node{Kind: tagNode, Value: string(s.b[i:end]), Line: line, Column: col}
		if s.b[i] == '&' {
			p.Kind, p.Value = anchorNode, n.Anchor
		}
		props = append(props, p)
		i = s.skipSpace(end)
	}
	if len(props) == 0 {
		return n
	}
	n.Line, n.Column = s.position(i)
	inner := n
	for j := len(props) - 1; j >= 0; j-- {
		props[j].Content = []*yaml.Node{inner}
		inner = props[j]
	}
	return inner
}

// skipSpace skips spaces, line ends and comments from i.
func (s *sourceText) skipSpace(i int) int {
	for i < len(s.b) {
		switch c := s.b[i]; {
		case isSpaceByte(c):
			i++
		case c == '#':
			for i < len(s.b) && s.b[i] != '\n' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// explicitKey reports whether the key n is written after a "?".
func (s *sourceText) explicitKey(n *yaml.Node) bool {
	i := s.offset(n.Line, n.Column) - 1
	for i >= 0 && isSpaceByte(s.b[i]) {
		i--
	}
	return i >= 0 && s.b[i] == '?' && (i == 0 || isSpaceByte(s.b[i-1]) || s.b[i-1] == '{' || s.b[i-1] == ',')
}

// moveBack moves the explicit key node k to its "?".
func (s *sourceText) moveBack(k *yaml.Node) {
	i := s.offset(k.Line, k.Column) - 1
	for i >= 0 && s.b[i] != '?' {
		i--
	}
	k.Line, k.Column = s.position(i)
}
