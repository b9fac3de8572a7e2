package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxAliasHops bounds alias-to-alias chains, so `&a *a` cannot loop.
const maxAliasHops = 16

// mapping loads the mapping n into dst: each key must be one of fields, at
// most once, and every required field must be present.
func mapping[T any](l *loader, path string, n *yaml.Node, dst *T, fields []field[T]) {
	m, ok := l.resolve(path, n)
	if !ok {
		return
	}
	if m.Kind != yaml.MappingNode {
		l.wrongType(path, m, "a mapping")
		return
	}
	var seen uint64 // bit i: fields[i] was set; schemas have < 64 fields
	for i := 0; i+1 < len(m.Content); i += 2 {
		seen |= entry(l, path, m, m.Content[i], m.Content[i+1], dst, fields, seen)
	}
	for i, f := range fields {
		if f.required && seen&(1<<i) == 0 {
			l.fail(fieldPath(path, f.name), m, fmt.Sprintf("missing required field %q", f.name), f.hint)
		}
	}
}

// entry loads one key: value pair of m and returns the bit of the field it
// set, or 0.
func entry[T any](l *loader, path string, m, k, v *yaml.Node, dst *T, fields []field[T], seen uint64) uint64 {
	key, ok := l.key(path, k)
	if !ok {
		return 0
	}
	i := slices.IndexFunc(fields, func(f field[T]) bool { return f.name == key })
	if i < 0 {
		l.unknownField(path, key, k, fieldNames(fields))
		return 0
	}
	fp := l.paths.field(path, key)
	if seen&(1<<i) != 0 {
		l.duplicateKey(fp, k, firstKey(m, key))
		return 0
	}
	if isNull(v) {
		// An empty value has no position of its own: point at the key.
		l.record(fp, k)
		l.fail(fp, k, fmt.Sprintf("field %q has no value", key), "give a value, or remove the field")
		return 1 << i
	}
	l.record(fp, v)
	fields[i].load(l, dst, fp, v)
	return 1 << i
}

// plainString returns n's value when n is a (plain or quoted) string.
func plainString(n *yaml.Node) (string, bool) {
	if n.Kind == yaml.ScalarNode && scalarKind(n) == kindString {
		return n.Value, true
	}
	return "", false
}

func isMap(n *yaml.Node) bool { return n.Kind == yaml.MappingNode }

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && scalarKind(n) == kindNull
}

// appendList loads the sequence n of mappings, appending each to dst. Item
// indices in paths continue from len(dst), so lists merge across files.
func appendList[T any](l *loader, path string, n *yaml.Node, dst []T, fields []field[T]) []T {
	seq, ok := l.sequence(path, n)
	if !ok {
		return dst
	}
	offset := len(dst)
	dst = slices.Grow(dst, len(seq.Content))
	for i := range seq.Content {
		var t T
		loadItem(l, path, seq, offset, i, &t, fields)
		dst = append(dst, t)
	}
	return dst
}

// loadItem loads item i of the sequence seq, which appendList appends at
// offset+i of the list at path, into dst.
func loadItem[T any](l *loader, path string, seq *yaml.Node, offset, i int, dst *T, fields []field[T]) {
	item := seq.Content[i]
	if item.Kind == lazyNode { // a reused chunk of the routes list, built now (yaml_lazy.go)
		item = l.lazy[item].take(i, !l.keepTree)
	}
	ip := l.paths.index(path, offset+i)
	l.record(ip, item)
	mapping(l, ip, item, dst, fields)
	if !l.keepTree {
		// The item is read, and without anchors nothing reads it again:
		// let the collector have its nodes while the rest of a long list
		// is loaded, so that a large policy does not hold its whole YAML
		// tree and its Policy at once.
		seq.Content[i] = nil
	}
}

func fieldNames[T any](fields []field[T]) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// firstKey returns the first key of the mapping m spelled key.
func firstKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; tokenText(k) == key {
			return k
		}
	}
	return nil
}

// key returns the text of a mapping key, which must be a scalar.
func (l *loader) key(path string, k *yaml.Node) (string, bool) {
	switch kd := kindOfNode(k); kd {
	case kindString:
		return k.Value, true
	case kindMergeKey:
		l.errorAt(path, l.rangeOf(k), "YAML merge keys (<<) are not supported",
			"write the fields out in full")
		return "", false
	case kindMapping, kindSequence, kindExplicitKey:
	default:
		return tokenText(k), true
	}
	l.errorAt(path, l.rangeOf(k), "a mapping key must be a plain field name", "use one of the allowed field names")
	return "", false
}

func (l *loader) unknownField(parent, key string, k *yaml.Node, names []string) {
	summary := fmt.Sprintf("unknown field %q", key)
	if s, ok := closest(key, names); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	where := "here"
	if parent != "" {
		where = "in " + parent
	}
	if parent == "" {
		// A misspelled top-level list hides its names from reference checks.
		l.p.src.partial = true
	}
	l.errorAt(fieldPath(parent, key), l.rangeOf(k), summary,
		fmt.Sprintf("fields allowed %s: %s", where, strings.Join(names, ", ")))
}

func (l *loader) duplicateKey(path string, k, first *yaml.Node) {
	if path == "gateways" || path == "routes" || path == "backends" {
		// A second top-level list is dropped, and its names with it.
		l.p.src.partial = true
	}
	l.errorAt(path, l.rangeOf(k), fmt.Sprintf("duplicate field %q (first set at line %d)", lastSegment(path), l.rangeOf(first).Line),
		"remove one of the two; only the first was read")
}

// sequence resolves n to a sequence, or reports why it is not one.
func (l *loader) sequence(path string, n *yaml.Node) (*yaml.Node, bool) {
	v, ok := l.resolve(path, n)
	if !ok {
		return nil, false
	}
	if v.Kind != yaml.SequenceNode {
		l.wrongType(path, v, "a list")
		return nil, false
	}
	return v, true
}

// strings loads a list of non-empty strings; an explicit empty list is
// non-nil.
func (l *loader) strings(path string, n *yaml.Node) []string {
	seq, ok := l.sequence(path, n)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(seq.Content))
	for i, item := range seq.Content {
		ip := l.paths.index(path, i)
		l.record(ip, item)
		out = append(out, l.str(ip, item))
	}
	return out
}

// str loads a non-empty string; "" means it failed (and was reported).
func (l *loader) str(path string, n *yaml.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	switch kindOfNode(v) {
	case kindString, kindLiteral:
	default:
		l.wrongType(path, v, "a string")
		return ""
	}
	if v.Value == "" {
		l.fail(path, v, "empty string", "give a value, or remove the field to use its default")
	}
	return v.Value
}

// integer loads an integer that fits in an int.
func (l *loader) integer(path string, n *yaml.Node) (int, bool) {
	v, ok := l.resolve(path, n)
	if !ok {
		return 0, false
	}
	if kindOfNode(v) != kindInteger {
		l.wrongType(path, v, "an integer")
		return 0, false
	}
	num, _, _ := parseNumber(v.Value)
	switch x := num.(type) {
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), true
		}
	case uint64:
		if x <= math.MaxInt {
			return int(x), true
		}
	}
	l.fail(path, v, fmt.Sprintf("integer %s is out of range", tokenText(v)), "use a smaller number")
	return 0, false
}

func (l *loader) boolean(path string, n *yaml.Node) bool {
	v, ok := l.resolve(path, n)
	if !ok {
		return false
	}
	if kindOfNode(v) != kindBool {
		l.wrongType(path, v, "true or false")
		return false
	}
	return v.Value[0] == 't' || v.Value[0] == 'T'
}

// resolve follows anchors and aliases to the node holding the value. Tags
// and aliases to anchors the loader has not read are errors.
func (l *loader) resolve(path string, n *yaml.Node) (*yaml.Node, bool) {
	for range maxAliasHops {
		switch n.Kind {
		case anchorNode:
			l.anchors[n.Value] = n.Content[0]
			n = n.Content[0]
		case yaml.AliasNode:
			target, ok := l.anchors[n.Value]
			if !ok {
				l.fail(path, n, fmt.Sprintf("unknown alias %q", n.Value),
					"define the anchor (&name) earlier in the same document, in a field Tollgate reads")
				return nil, false
			}
			n = target
		case tagNode:
			l.fail(path, n, fmt.Sprintf("YAML tag %s is not supported", n.Value), "remove the tag")
			return nil, false
		default:
			return n, true
		}
	}
	l.fail(path, n, "YAML alias chain is too long or circular", "use the value directly")
	return nil, false
}

func (l *loader) wrongType(path string, n *yaml.Node, want string) {
	got, detail := describe(n)
	isString := kindOfNode(n) == kindString
	switch {
	case want == "a string" && isScalar(n):
		detail = fmt.Sprintf("quote the value: %q", tokenText(n))
	case want == "an integer" && isQuoted(n) && isDigits(tokenText(n)):
		detail = "remove the quotes: " + tokenText(n)
	case want == "a list" && (isString || isScalar(n)):
		detail = fmt.Sprintf("write a list: [%s]", tokenText(n))
	}
	l.fail(path, n, fmt.Sprintf("expected %s, got %s", want, got), detail)
}

func isQuoted(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// describe names the kind of value n holds, with a generic fix.
func describe(n *yaml.Node) (kind, fix string) {
	const fix1 = "give a value of the expected type"
	switch k := kindOfNode(n); k {
	case kindNull:
		return "no value", "give a value, or remove the field"
	case kindMapping:
		return "a mapping", fix1
	case kindSequence:
		return "a list", fix1
	case kindString, kindLiteral:
		return fmt.Sprintf("string %q", tokenText(n)), fix1
	default:
		return fmt.Sprintf("%s %s", strings.ToLower(k.String()), tokenText(n)), fix1
	}
}

// isScalar reports whether n is a number, a boolean, an infinity or NaN.
func isScalar(n *yaml.Node) bool {
	switch kindOfNode(n) {
	case kindInteger, kindFloat, kindBool, kindInfinity, kindNan:
		return true
	}
	return false
}

// rangeOf returns where n starts; for a mapping, where its first key is.
func (l *loader) rangeOf(n *yaml.Node) Range {
	if n == nil {
		return Range{File: l.file}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	return Range{File: l.file, Line: n.Line, Column: n.Column}
}

// tokenText is n's text, for messages: a scalar's value, an alias's or an
// anchor's name, a tag.
func tokenText(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}
