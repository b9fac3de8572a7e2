package policy

import (
	"fmt"
	"strings"
)

// prescanner walks one YAML file's bytes once, splitting them into tokens
// the way the YAML parser's scanner (goccy/go-yaml) does, to count nodes and
// measure nesting depth, list length and scalar size without building
// anything: it keeps only the stack of open collections, which MaxDepth
// bounds. Where the two could disagree (a quote that may or may not start a
// string, a line that may or may not continue a plain scalar) it takes the
// reading that counts more structure, so its depth and node count are never
// below what the parser builds (FuzzPrescanBounds checks this).
type prescanner struct {
	src    []byte
	lim    Limits
	budget int // nodes this file may still hold

	i         int  // offset of the next byte
	line      int  // 1-based line of i
	lineStart int  // offset of that line's first byte
	newLine   bool // i is at the start of a line

	block     []blockLevel // open block collections, outermost first
	flow      []int        // entries so far of each open flow collection
	lastDelim int          // 0-based column of the last key, "-" or "?"; -1 for none

	plain      bool // inside a plain scalar (the scanner's buffer is not empty)
	plainCol   int  // column where that scalar started
	plainStart int  // offset where that scalar started
	// propLine is set by an anchor or tag that ends its line: the parser
	// nests what follows under it, even at the same column.
	propLine bool
	// dashLine is set by a "-" that ends its line: the parser nests a key
	// that follows at the same column under it.
	dashLine bool

	nodes    int
	maxDepth int // deepest nesting seen
	err      *limitError
}

// blockLevel is one open block list (seq) or mapping, at column col.
type blockLevel struct {
	col, items int
	seq        bool
}

// limitError is the first limit a file breaks, and where.
type limitError struct {
	line, column int
	summary, fix string
}

func newPrescanner(src []byte, lim Limits, budget int) *prescanner {
	return &prescanner{src: src, lim: lim, budget: budget, line: 1, newLine: true, lastDelim: -1}
}

// run scans the whole file and returns the first limit it breaks, or nil.
func (s *prescanner) run() *limitError {
	for s.i < len(s.src) && s.err == nil {
		if s.newLine {
			s.startLine()
			continue
		}
		c := s.src[s.i]
		switch {
		case c == '\n':
			s.nextLine()
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '#' && s.commentStarts():
			s.plain = false
			s.skipLine()
		case len(s.flow) > 0:
			s.flowToken(c)
		default:
			s.blockToken(c)
		}
	}
	return s.err
}

// startLine handles a line's indentation: outside flow collections, a line
// indented no deeper than the last key ends a plain scalar (as the
// scanner's "indent down"), and "---" or "..." starts a new document.
func (s *prescanner) startLine() {
	s.newLine = false
	ind := s.indentAt(s.i)
	if len(s.flow) > 0 || s.blankAt(s.i+ind) {
		return
	}
	if ind <= s.lastDelim {
		s.plain = false
	}
	if ind == 0 && s.documentMarker() {
		s.block, s.lastDelim, s.plain = s.block[:0], -1, false
		s.i += 3
		return
	}
	if ind == 0 && !s.plain && s.src[s.i] == '%' {
		s.skipLine()
		return
	}
	s.i += ind
}

// blockToken handles byte c outside flow collections.
func (s *prescanner) blockToken(c byte) {
	col := s.i - s.lineStart
	if s.plain {
		if c == ':' && s.spaceAfter(s.i+1) {
			s.plain = false
			s.mapKey(s.plainCol)
			s.i++
			return
		}
		s.plainRun()
		return
	}
	switch {
	case (c == '-' || c == '?') && s.spaceAfter(s.i+1):
		s.blockEntry(col, c == '-')
		s.lastDelim = col
		s.i++
		s.dashLine = c == '-' && s.blankAt(s.i)
	case c == '[' || c == '{':
		s.openFlow()
	case c == ':' && s.spaceAfter(s.i+1): // after a flow key, or an empty key
		s.mapKey(col)
		s.i++
	case c == ']':
		s.i++
	case c == '"' || c == '\'':
		s.quoted(c)
		if s.keyFollows() {
			s.mapKey(col)
		}
	case c == '&' || c == '*' || c == '!':
		s.property(c)
	case c == '|' || c == '>':
		s.blockScalar()
	default:
		s.startPlain(col)
	}
}

// flowToken handles byte c inside a flow collection, where the flow
// indicators are always structure.
func (s *prescanner) flowToken(c byte) {
	switch {
	case c == '[' || c == '{':
		s.openFlow()
	case c == ']' || c == '}':
		s.plain = false
		s.flow = s.flow[:len(s.flow)-1]
		s.i++
	case c == ',':
		s.plain = false
		s.flow[len(s.flow)-1]++
		s.checkItems(s.flow[len(s.flow)-1] + 1)
		s.i++
	case c == ':' && (s.spaceAfter(s.i+1) || s.flowIndicatorAt(s.i+1)):
		s.plain = false
		s.i++
	case s.plain:
		s.plainRun()
	case c == '"' || c == '\'':
		s.quoted(c)
	case c == '&' || c == '*' || c == '!':
		s.property(c)
	default:
		s.startPlain(s.i - s.lineStart)
	}
}

// blockEntry records a list item ("-", seq) or a mapping key at col.
func (s *prescanner) blockEntry(col int, seq bool) {
	for n := len(s.block); n > 0 && s.block[n-1].col > col; n-- {
		s.block = s.block[:n-1]
	}
	nested := s.propLine || (s.dashLine && !seq)
	s.propLine, s.dashLine = false, false
	if n := len(s.block); n > 0 && s.block[n-1].col == col && !nested {
		top := &s.block[n-1]
		if top.seq == seq {
			top.items++
			s.checkItems(top.items)
			s.addNode() // the entry (its value may be an implicit null)
			return
		}
		if top.seq { // a key at a list's column ends an indentless list
			s.block = s.block[:n-1]
			s.blockEntry(col, seq)
			return
		}
		// a "-" at a key's column starts an indentless list: one level down
	}
	s.block = append(s.block, blockLevel{col: col, items: 1, seq: seq})
	s.addNode()
	s.checkDepth()
}

func (s *prescanner) mapKey(col int) {
	s.blockEntry(col, false)
	s.lastDelim = col
}

func (s *prescanner) openFlow() {
	s.plain, s.propLine, s.dashLine = false, false, false
	s.flow = append(s.flow, 0)
	s.addNode()
	s.checkDepth()
	s.i++
}

func (s *prescanner) startPlain(col int) {
	s.plain, s.plainCol, s.plainStart = true, col, s.i
	s.addNode()
	s.i++
}

func (s *prescanner) plainByte() {
	s.i++
	s.checkScalar(s.i - s.plainStart)
}

// plainRun is plainByte for the byte at i and each byte after it that
// run would hand to plainByte too, without going through run: up to a
// space, a line end, a "#", a ":" or a flow indicator, which run handles.
// The scalar's size is checked once: plainByte would fail at the first
// byte of the run past plainStart+MaxScalarBytes, so it is called there,
// if the run gets there. That is the run's first byte when the scalar,
// continued from an earlier line, is already longer: the spaces and line
// ends between its lines count but are not checked.
func (s *prescanner) plainRun() {
	end := s.i + 1
	for end < len(s.src) && plainContinues(s.src[end]) {
		end++
	}
	if limit := s.plainStart + s.lim.MaxScalarBytes; end > limit {
		s.i = max(s.i, limit)
		s.plainByte()
		return
	}
	s.i = end
}

// plainContinues reports whether run hands c to plainByte whenever a plain
// scalar is open, whatever comes before or after it.
func plainContinues(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '#', ':', ',', '[', ']', '{', '}':
		return false
	}
	return true
}

// quoted skips a single- or double-quoted scalar starting at i, which may
// span lines. An unterminated one runs to the end (the parser reports it).
func (s *prescanner) quoted(q byte) {
	start := s.i
	s.addNode()
	for s.i++; s.i < len(s.src); s.i++ {
		c := s.src[s.i]
		switch {
		case c == '\n':
			s.line, s.lineStart = s.line+1, s.i+1
		case c == '\\' && q == '"':
			if s.i+1 < len(s.src) && s.src[s.i+1] == '\n' {
				s.line, s.lineStart = s.line+1, s.i+2
			}
			s.i++
		case c == q && q == '\'' && s.i+1 < len(s.src) && s.src[s.i+1] == '\'':
			s.i++
		case c == q:
			s.i++
			s.checkScalar(s.i - start)
			return
		}
	}
	s.checkScalar(s.i - start)
}

// keyFollows reports whether ": " follows i (after spaces) on the line,
// consuming it if so.
func (s *prescanner) keyFollows() bool {
	j := s.i
	for j < len(s.src) && (s.src[j] == ' ' || s.src[j] == '\t') {
		j++
	}
	if j < len(s.src) && s.src[j] == ':' && s.spaceAfter(j+1) {
		s.i = j + 1
		return true
	}
	return false
}

// property skips an anchor (&a), alias (*a) or tag (!t) up to the next
// space or flow indicator; an alias is a node. As in the scanner, an
// anchor's or alias's name may itself start a token ("&[", "*'x'"): then
// only the indicator is skipped.
func (s *prescanner) property(c byte) {
	s.i++
	if c == '*' {
		s.addNode()
	}
	if c != '!' && s.i < len(s.src) && strings.IndexByte("\"'[]{}?-|>!&*:#,", s.src[s.i]) >= 0 {
		return
	}
	if c == '!' {
		for ; s.i < len(s.src) && !s.spaceAfter(s.i) && !(len(s.flow) > 0 && s.flowIndicatorAt(s.i)); s.i++ {
		}
	} else {
		// The scanner ends an anchor's or alias's name at the first byte
		// that is not [0-9A-Za-z_-] ("&a:" is the anchor a, then ":").
		for ; s.i < len(s.src) && isAnchorByte(s.src[s.i]); s.i++ {
		}
	}
	s.propLine = c != '*' && s.blankAt(s.i)
}

// isAnchorByte reports whether b may be part of an anchor's or alias's
// name, by the parser's rule.
func isAnchorByte(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' || b == '-'
}

// blockScalar skips a literal (|) or folded (>) scalar: its header line,
// then every line that is blank or indented deeper than the last key.
func (s *prescanner) blockScalar() {
	s.propLine, s.dashLine = false, false
	s.addNode()
	s.skipLine()
	start := s.i
	for s.i < len(s.src) && s.err == nil {
		s.nextLine()
		ind := s.indentAt(s.i)
		if !s.blankAt(s.i+ind) && (ind <= s.lastDelim || (ind == 0 && s.documentMarker())) {
			return // startLine handles this line
		}
		s.newLine = false
		s.skipLine()
		s.checkScalar(s.i - start)
	}
}

func (s *prescanner) nextLine() {
	if s.i < len(s.src) {
		s.i++ // the '\n'
	}
	s.line, s.lineStart, s.newLine = s.line+1, s.i, true
}

// skipLine moves i to the line's '\n' (or the end).
func (s *prescanner) skipLine() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

func (s *prescanner) indentAt(i int) int {
	n := 0
	for i+n < len(s.src) && s.src[i+n] == ' ' {
		n++
	}
	return n
}

// blankAt reports whether only spaces, a comment or nothing is left on the
// line at i.
func (s *prescanner) blankAt(i int) bool {
	for ; i < len(s.src); i++ {
		switch s.src[i] {
		case ' ', '\t', '\r':
			continue
		case '\n', '#':
			return true
		}
		return false
	}
	return true
}

// commentStarts reports whether '#' at i starts a comment: at a token's
// start, or after a space.
func (s *prescanner) commentStarts() bool {
	if !s.plain || s.i == 0 {
		return true
	}
	p := s.src[s.i-1]
	return p == ' ' || p == '\t' || p == '\n'
}

// spaceAfter reports whether i is a space, a tab, a line end or the end.
func (s *prescanner) spaceAfter(i int) bool {
	if i >= len(s.src) {
		return true
	}
	c := s.src[i]
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func (s *prescanner) flowIndicatorAt(i int) bool {
	if i >= len(s.src) {
		return false
	}
	switch s.src[i] {
	case ',', '[', ']', '{', '}':
		return true
	}
	return false
}

// documentMarker reports whether the line at i starts with "---" or "...".
func (s *prescanner) documentMarker() bool {
	i := s.i
	if i+3 > len(s.src) || !s.spaceAfter(i+3) {
		return false
	}
	m := string(s.src[i : i+3])
	return m == "---" || m == "..."
}

func (s *prescanner) addNode() {
	s.nodes++
	if s.nodes > s.budget {
		s.fail(fmt.Sprintf("the policy has more than %d values (lists, mappings and scalars)", s.lim.MaxNodes),
			"split the policy across control planes or shrink it: the limit bounds the control plane's memory")
	}
}

func (s *prescanner) checkDepth() {
	d := len(s.block) + len(s.flow)
	s.maxDepth = max(s.maxDepth, d)
	if d > s.lim.MaxDepth {
		s.fail(fmt.Sprintf("lists and mappings nested more than %d levels deep", s.lim.MaxDepth),
			"flatten the structure: no policy field nests that deep")
	}
}

func (s *prescanner) checkItems(n int) {
	if n > s.lim.MaxItems {
		s.fail(fmt.Sprintf("a list or mapping with more than %d entries", s.lim.MaxItems),
			"split the list across files or shrink it: the limit bounds the control plane's memory")
	}
}

func (s *prescanner) checkScalar(n int) {
	if n > s.lim.MaxScalarBytes {
		s.fail(fmt.Sprintf("a value longer than %d bytes", s.lim.MaxScalarBytes),
			"shorten it: no policy field needs a value that long")
	}
}

// fail records the first broken limit, at the current position, and stops
// the scan.
func (s *prescanner) fail(summary, fix string) {
	if s.err == nil {
		s.err = &limitError{line: s.line, column: s.i - s.lineStart + 1, summary: summary, fix: fix}
	}
	s.i = len(s.src)
}
