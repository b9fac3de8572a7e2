package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Parsing a large policy in parallel.
//
// The YAML parser is single-threaded, and a large policy is one long block
// sequence (routes:) with a little around it. parseSplit cuts the text of
// the largest top-level block sequence at lines that start one of its
// items, parses the pieces concurrently, and splices the items back, so
// that the tree is the sequential parser's, node for node: Kind, Style,
// Tag, Value, Line, Column and comments. Anything unusual makes it give up
// (ok false), and the caller parses the file sequentially, which also
// gives the user-facing errors.
//
// The file is cut, by lines, into
//
//	prefix   up to and including the line `key:` at column 0 and the blank
//	         lines after it (no comment, nothing after the colon);
//	chunk i  from cut line c(i) to c(i+1), where c(0) is the first item
//	         and each cut is a line of exactly n spaces, "-" and a space or
//	         the line's end, n being the first item's indentation (n may be
//	         0: the sequence at the key's own indentation);
//	suffix   from the first line after the sequence: the first line that is
//	         not blank, not a comment and not an item of indentation n or
//	         anything more indented.
//
// The rest (prefix, one placeholder item "- x" at indentation n, suffix) is
// parsed as one document; each chunk is parsed alone, after one line break
// (see (4)), keeping its indentation, so every column is the file's. The
// result is used only if every part parses, the rest has the key at its
// line in its root mapping (at column 0) with the placeholder as its block
// sequence's only item, at the first item's position, each chunk is one
// block sequence at indentation n, and no part holds an anchor, an alias
// or an explicit tag. Lines are then shifted back to the file's: a chunk's
// by the line it starts at, the suffix's by the lines the placeholder
// stands for.
//
// Why this is the sequential parse. The parser is a left-to-right state
// machine whose look-ahead never crosses a line end in block context (a
// simple key must fit on one line).
// (1) The prefix is the same bytes in the file and in the rest, up to the
// "- " of the first item, so the parser is in the same state there: the
// checks on the rest prove it is then inside the key's block sequence, in
// block context, about to read an item at indentation n.
// (2) In that state, a line of n spaces and "- " starts the next item
// unless the line belongs to a flow collection or a quoted scalar still
// open: a block scalar or a multi-line plain scalar inside an item is more
// indented than n and ends at a line of indentation n, and a comment ends
// at its line's end. By induction on the chunks: if chunk i starts at an
// item (chunk 0 does, by (1)), the parser reads its text as it reads the
// chunk alone (no token of the chunk is less indented than n, else the
// chunk would not be one sequence at n, so the indentation levels below n,
// which differ, are never consulted); a chunk that leaves a flow
// collection or a quoted scalar open fails (unexpected end of stream), so
// a chunk that parses ends between two items, and chunk i+1 starts at an
// item.
// (3) The suffix starts with a line less indented than the items (or at
// column 0 and not an item when n is 0), after a complete item in both
// texts, so it closes the sequence and the parser goes on from the same
// state in the rest and in the file.
// (4) Comments: yaml.v3 attaches a comment to the tokens around it, by
// their indentation and the blank lines between. The line before each cut
// and the sequence's last line must be content without "#", a cut line
// must hold no "#", the lines between the key and the first item and
// between the last item and the suffix must be blank, and the chunks' root
// sequences and documents, the rest's sequence, key and placeholder must
// have no comment; so every comment lies between two tokens of one part,
// and attaches there as in the file. The scanner treats a comment after a
// token of a stream's first line apart, and counts the line breaks before
// a token: each chunk is parsed after one line break, as its first item
// follows one in the file.
// (5) Positions: every node is at its first token, except an empty node,
// at its indicator ("-", ":"), or at the next token for an explicit key
// ("? k") without a value, which could be the next chunk's: files with an
// explicit key are refused.
// (6) Anchors and tags are refused: an alias could name an anchor of
// another part, and a %TAG directive applies to the whole document.
// Several documents, directives or document markers after the key, tabs,
// line breaks other than LF and CRLF (the parser counts lines by them),
// NUL and byte order marks after the first byte are refused too.
//
// TestParseSplitDifferential and FuzzParseSplit check this against the
// sequential parse, at every cut, on every input of the loader's
// differential corpus, on generated large files and on fuzzed inputs;
// without the explicit-key refusal, the leading line break or the comment
// rules of (4), they fail.
//
// Nothing above depends on which of the listed cuts (seqSpan.cuts) are
// taken, and each part's tree depends on its text alone (and, for the
// rest, on the lines of the key and the first item, which its text fixes):
// a ParseCache (yaml_cache.go) cuts at lines chosen by the content and
// reuses, across builds, the tree of a part whose text did not change.

// splitMinBytes is the size from which parseYAML parses a file in
// parallel. Measured (callgrind, BenchmarkParseSplit): split in two, the
// parse's critical path is ~55% of the sequential parse's instructions at
// any size (1,000 routes: 61M of 109M; 10,000: 611M of 1,100M), for ~4%
// more instructions in all. The time it saves needs an idle core, which a
// push has while it compiles (the proxies are idle then): at 1,000 routes
// (74-161 KiB) it is ~4 ms of a ~60 ms push on an idle 2-core host, where
// a busy host gains nothing and pays the 4%. Below 64 KiB (~850 routes of
// the bench's shape) the parse takes a few milliseconds and is left alone.
const splitMinBytes = 64 << 10

// placeholder is the item the rest holds instead of the sequence.
const placeholder = "- x\n"

// seqSpan is the block sequence parseSplit cuts, by 0-based line numbers.
type seqSpan struct {
	key    int   // the line "key:"
	first  int   // the first item's line
	stop   int   // the first line after the sequence (the suffix's first)
	indent int   // the items' indentation
	cuts   []int // the lines where a chunk may start, ascending
}

// parseSplit parses content, one document, with workers goroutines, as
// described above; ok is false when it cannot, and the caller must then
// parse sequentially. The document node it returns is the parser's.
func parseSplit(content []byte, workers int) (doc *yaml.Node, ok bool) {
	if workers < 2 || !splittableText(content) {
		return nil, false
	}
	lines := lineOffsets(content)
	span, ok := largestSequence(content, lines)
	if !ok {
		return nil, false
	}
	rest := restText(content, lines, span)
	cuts := chooseCuts(content, lines, span, len(rest), workers)
	if len(cuts) < 2 {
		return nil, false
	}
	return parseParts(content, lines, span, rest, cuts)
}

// splittableText refuses text whose lines the parser counts otherwise
// than by "\n" (lone CR, NEL, LS, PS), byte order marks after the start,
// tabs (indentation or separation), NUL, explicit keys, and text with
// signs of an anchor, alias or tag (the parts' trees are checked for
// those; this only spares a parse that would be thrown away).
func splittableText(b []byte) bool {
	if bytes.IndexByte(b, '\t') >= 0 || bytes.IndexByte(b, 0) >= 0 || loneCR(b) {
		return false
	}
	for _, s := range []string{"\u0085", "\u2028", "\u2029"} {
		if bytes.Contains(b, []byte(s)) {
			return false
		}
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	if bytes.Contains(b, []byte("\uFEFF")) {
		return false
	}
	return !hasPropertySign(b, '&') && !hasPropertySign(b, '*') && !hasPropertySign(b, '!') && !hasExplicitKey(b)
}

// hasExplicitKey reports a "?" where an explicit key's indicator could be:
// at a line's start or after a space or a flow indicator, followed by a
// space or the line's end. In block context (all that matters, see (5)
// above) the indicator starts a token, after indentation, "- ", "? " or
// ": ", and is followed by a space, a tab or a line break; tabs and lone
// CRs are refused before, so this finds every one.
func hasExplicitKey(b []byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '?')
		if j < 0 {
			return false
		}
		i += j
		before := i == 0 || bytes.IndexByte([]byte(" \n[{,"), b[i-1]) >= 0
		after := i+1 == len(b) || bytes.IndexByte([]byte(" \r\n"), b[i+1]) >= 0
		if before && after {
			return true
		}
		i++
	}
	return false
}

// loneCR reports a "\r" not followed by "\n".
func loneCR(b []byte) bool {
	for i := bytes.IndexByte(b, '\r'); i >= 0; {
		if i+1 == len(b) || b[i+1] != '\n' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\r')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// hasPropertySign reports c where a token may start (after a space, a
// line start or a flow indicator) followed by a character that is not a
// space: where an anchor (&), alias (*) or tag (!) could be.
func hasPropertySign(b []byte, c byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], c)
		if j < 0 {
			return false
		}
		i += j
		before := i == 0 || bytes.IndexByte([]byte(" \n[{,"), b[i-1]) >= 0
		after := i+1 < len(b) && !isSpaceByte(b[i+1])
		if before && after {
			return true
		}
		i++
	}
	return false
}

// lineOffsets returns the offset of each line's first byte.
func lineOffsets(b []byte) []int {
	lines := make([]int, 1, bytes.Count(b, []byte("\n"))+1)
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return lines
		}
		i += j + 1
		lines = append(lines, i)
	}
}

// lineAt returns line i of b without its line break.
func lineAt(b []byte, lines []int, i int) []byte {
	end := len(b)
	if i+1 < len(lines) {
		end = lines[i+1]
	}
	l := b[lines[i]:end]
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

// offsetOf returns the offset of line i, or len(b) past the last line.
func offsetOf(b []byte, lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return len(b)
}

// largestSequence finds the top-level block sequence with the most bytes
// that parseSplit can cut (see sequenceAt). It refuses a file with a
// directive or a document marker after the line "key:" of the sequence.
func largestSequence(b []byte, lines []int) (seqSpan, bool) {
	var best seqSpan
	found, marker := false, -1
	for i := 0; i < len(lines); i++ {
		l := lineAt(b, lines, i)
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%")) {
			marker = i
			continue
		}
		if !isKeyLine(l) {
			continue
		}
		s, ok := sequenceAt(b, lines, i)
		if !ok {
			continue
		}
		if !found || offsetOf(b, lines, s.stop)-lines[s.first] > offsetOf(b, lines, best.stop)-lines[best.first] {
			best, found = s, true
		}
		i = s.stop - 1
	}
	return best, found && marker < best.key
}

// isKeyLine reports a line "key:" at column 0, with a plain key of
// letters, digits, "_", "-" or "." and nothing after the colon but spaces.
func isKeyLine(l []byte) bool {
	l = bytes.TrimRight(l, " ")
	if len(l) < 2 || l[len(l)-1] != ':' || l[0] == '-' || l[0] == '.' {
		return false
	}
	for _, c := range l[:len(l)-1] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// lineKind classifies a line: blank, a comment, or content at indent.
func lineKind(l []byte) (indent int, blank, comment bool) {
	indent = len(l) - len(bytes.TrimLeft(l, " "))
	if indent == len(l) {
		return indent, true, false
	}
	return indent, false, l[indent] == '#'
}

// isItemLine reports a line of exactly n spaces, "-", and a space or the
// line's end.
func isItemLine(l []byte, n int) bool {
	ind, blank, _ := lineKind(l)
	return !blank && ind == n && l[n] == '-' && (len(l) == n+1 || l[n+1] == ' ')
}

// sequenceAt reads the block sequence under the key at line k: blank
// lines, then an item line at some indentation n, then every line up to
// the first content line less indented than n or at n and not an item.
// The sequence must end with a content line without "#", followed only by
// blank lines; a cut is an item line without "#" after a content line
// without "#".
func sequenceAt(b []byte, lines []int, k int) (seqSpan, bool) {
	s := seqSpan{key: k, first: k + 1}
	for s.first < len(lines) {
		if _, blank, _ := lineKind(lineAt(b, lines, s.first)); !blank {
			break
		}
		s.first++
	}
	if s.first == len(lines) {
		return s, false
	}
	first := lineAt(b, lines, s.first)
	s.indent, _, _ = lineKind(first)
	if !isItemLine(first, s.indent) || bytes.IndexByte(first, '#') >= 0 {
		return s, false
	}
	s.cuts = append(s.cuts, s.first)
	last, prev := s.first, first
	for s.stop = s.first + 1; s.stop < len(lines); s.stop++ {
		l := lineAt(b, lines, s.stop)
		ind, blank, comment := lineKind(l)
		if blank || comment {
			prev = nil
			continue
		}
		item := ind == s.indent && l[ind] == '-' && (len(l) == ind+1 || l[ind+1] == ' ')
		if ind < s.indent || ind == s.indent && !item {
			break
		}
		if item && prev != nil && bytes.IndexByte(prev, '#') < 0 && bytes.IndexByte(l, '#') < 0 {
			s.cuts = append(s.cuts, s.stop)
		}
		last, prev = s.stop, l
	}
	return s, bytes.IndexByte(lineAt(b, lines, last), '#') < 0 && blankBetween(b, lines, last+1, s.stop)
}

// blankBetween reports whether lines from to to (exclusive) are all blank.
func blankBetween(b []byte, lines []int, from, to int) bool {
	for i := from; i < to; i++ {
		if _, blank, _ := lineKind(lineAt(b, lines, i)); !blank {
			return false
		}
	}
	return true
}

// restText returns the file with the sequence's lines replaced by one
// placeholder item at the sequence's indentation.
func restText(b []byte, lines []int, s seqSpan) []byte {
	head, tail := b[:lines[s.first]], b[offsetOf(b, lines, s.stop):]
	rest := make([]byte, 0, len(head)+s.indent+len(placeholder)+len(tail))
	rest = append(rest, head...)
	rest = append(rest, bytes.Repeat([]byte(" "), s.indent)...)
	rest = append(rest, placeholder...)
	return append(rest, tail...)
}

// chooseCuts picks up to workers chunk starts among s.cuts so that each
// worker parses about as many bytes: the first parses the rest and chunk
// 0, the others one chunk each. The first cut is always the first item.
func chooseCuts(b []byte, lines []int, s seqSpan, restLen, workers int) []int {
	seqStart := lines[s.first]
	share := (restLen + offsetOf(b, lines, s.stop) - seqStart) / workers
	out := []int{s.first}
	target := seqStart + max(share-restLen, share/8)
	for len(out) < workers {
		i, _ := slices.BinarySearchFunc(s.cuts, target, func(cut, t int) int { return lines[cut] - t })
		if i == len(s.cuts) {
			break
		}
		if s.cuts[i] > out[len(out)-1] {
			out = append(out, s.cuts[i])
		}
		target = lines[s.cuts[i]] + share
	}
	return out
}

// parseParts parses the rest and the chunks starting at cuts, the rest
// and chunk 0 in this goroutine and each other chunk in one of its own,
// and splices the chunks' items into the rest's sequence.
func parseParts(b []byte, lines []int, s seqSpan, rest []byte, cuts []int) (*yaml.Node, bool) {
	items := make([][]*yaml.Node, len(cuts))
	ok := make([]bool, len(cuts))
	var wg sync.WaitGroup
	for i := 1; i < len(cuts); i++ {
		wg.Go(func() { items[i], ok[i] = parseChunk(b, lines, s, cuts, i) })
	}
	doc, seq, restOK := parseRest(rest, s)
	items[0], ok[0] = parseChunk(b, lines, s, cuts, 0)
	wg.Wait()
	if !restOK || slices.Contains(ok, false) {
		return nil, false
	}
	seq.Content = slices.Concat(items...)
	return doc, true
}

// parseChunk parses chunk i alone (see parseChunkText) and returns its
// items, at the file's lines.
func parseChunk(b []byte, lines []int, s seqSpan, cuts []int, i int) ([]*yaml.Node, bool) {
	root, ok := parseChunkText(chunkText(b, lines, s, cuts, i), s.indent)
	if !ok {
		return nil, false
	}
	return root.Content, shiftLines(root, 0, cuts[i]-1)
}

// chunkText returns the text of chunk i: from cut i to the next cut, or
// to the end of the sequence.
func chunkText(b []byte, lines []int, s seqSpan, cuts []int, i int) []byte {
	end := s.stop
	if i+1 < len(cuts) {
		end = cuts[i+1]
	}
	return b[lines[cuts[i]]:offsetOf(b, lines, end)]
}

// parseChunkText parses a chunk alone, after a line break (the parser
// treats comments after a token on the first line apart, and the item's
// "-" follows a line break in the file too), and returns its root
// sequence, at the chunk's own lines (its first item at line 2), if it is
// one block sequence at indentation indent, without comments of its own
// (see parseSplit). The tree is a function of chunk and indent alone.
func parseChunkText(chunk []byte, indent int) (*yaml.Node, bool) {
	doc, err := parseOne(io.MultiReader(bytes.NewReader([]byte("\n")), bytes.NewReader(chunk)))
	if err != nil || hasComments(doc) || len(doc.Content) != 1 {
		return nil, false
	}
	root := doc.Content[0]
	if !isBlockSequenceAt(root, 2, indent+1) || hasComments(root) {
		return nil, false
	}
	return root, true
}

// parseRest parses the rest and returns its document and the sequence
// holding the placeholder, with the suffix's nodes moved to the file's
// lines (see parseRestText).
func parseRest(rest []byte, s seqSpan) (doc, seq *yaml.Node, ok bool) {
	doc, at, ok := parseRestText(rest, s)
	if !ok {
		return nil, nil, false
	}
	return doc, doc.Content[0].Content[at], shiftLines(doc, s.first+1, s.stop-s.first-1)
}

// parseRestText parses the rest and returns its document, at the rest's
// own lines, and the index in its root mapping of the sequence holding
// the placeholder, if the placeholder is where the sequence's first item
// is (see parseSplit). The tree is a function of rest and s's key, first
// and indent alone.
func parseRestText(rest []byte, s seqSpan) (doc *yaml.Node, at int, ok bool) {
	doc, err := parseOne(bytes.NewReader(rest))
	if err != nil || len(doc.Content) != 1 {
		return nil, 0, false
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || root.Style != 0 || root.Column != 1 {
		return nil, 0, false
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Style == 0 && k.Line == s.key+1 && k.Column == 1 && k.FootComment == "" {
			return doc, i + 1, isPlaceholder(v, s)
		}
	}
	return nil, 0, false
}

// isPlaceholder reports whether seq is the rest's sequence as the
// placeholder makes it: one plain item "x", nothing else.
func isPlaceholder(seq *yaml.Node, s seqSpan) bool {
	if !isBlockSequenceAt(seq, s.first+1, s.indent+1) || hasComments(seq) || len(seq.Content) != 1 {
		return false
	}
	x := seq.Content[0]
	return x.Kind == yaml.ScalarNode && x.Style == 0 && x.Value == "x" && !hasComments(x) &&
		x.Line == s.first+1 && x.Column == s.indent+3
}

func isBlockSequenceAt(n *yaml.Node, line, col int) bool {
	return n.Kind == yaml.SequenceNode && n.Style == 0 && n.Line == line && n.Column == col
}

func hasComments(n *yaml.Node) bool {
	return n.HeadComment != "" || n.LineComment != "" || n.FootComment != ""
}

// shiftLines adds delta to the line of every node of n's tree after line
// after; false if a node has an anchor or an explicit tag, or is an
// alias.
func shiftLines(n *yaml.Node, after, delta int) bool {
	if n.Anchor != "" || n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle != 0 {
		return false
	}
	if n.Line > after {
		n.Line += delta
	}
	for _, c := range n.Content {
		if !shiftLines(c, after, delta) {
			return false
		}
	}
	return true
}

// parseOne parses r, which must hold exactly one document. A panic in the
// parser is an error.
func parseOne(r io.Reader) (doc *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(r)
	doc = new(yaml.Node)
	if err := dec.Decode(doc); err != nil {
		return nil, err
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, errors.New("not one document")
	}
	return doc, nil
}
