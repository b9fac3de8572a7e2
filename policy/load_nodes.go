package policy

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// maxAliasHops bounds alias-to-alias chains, so `&a *a` cannot loop.
const maxAliasHops = 16

// mapping loads the mapping n into dst: each key must be one of fields, at
// most once, and every required field must be present.
func mapping[T any](l *loader, path string, n ast.Node, dst *T, fields []field[T]) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	m, ok := v.(*ast.MappingNode)
	if !ok {
		l.wrongType(path, v, "a mapping")
		return
	}
	var seen uint64 // bit i: fields[i] was set; schemas have < 64 fields
	for _, kv := range m.Values {
		if kv != nil {
			seen |= entry(l, path, m, kv, dst, fields, seen)
		}
	}
	for i, f := range fields {
		if f.required && seen&(1<<i) == 0 {
			l.fail(fieldPath(path, f.name), m, fmt.Sprintf("missing required field %q", f.name), f.hint)
		}
	}
}

// entry loads one key: value pair of m and returns the bit of the field it
// set, or 0.
func entry[T any](l *loader, path string, m *ast.MappingNode, kv *ast.MappingValueNode, dst *T, fields []field[T], seen uint64) uint64 {
	key, ok := l.key(path, kv.Key)
	if !ok {
		return 0
	}
	i := slices.IndexFunc(fields, func(f field[T]) bool { return f.name == key })
	if i < 0 {
		l.unknownField(path, key, kv.Key, fieldNames(fields))
		return 0
	}
	fp := fieldPath(path, key)
	if seen&(1<<i) != 0 {
		l.duplicateKey(fp, kv.Key, firstKey(m, key))
		return 0
	}
	if isNull(kv.Value) {
		// An empty value has no position of its own: point at the key.
		l.record(fp, kv.Key)
		l.fail(fp, kv.Key, fmt.Sprintf("field %q has no value", key), "give a value, or remove the field")
		return 1 << i
	}
	l.record(fp, kv.Value)
	fields[i].load(l, dst, fp, kv.Value)
	return 1 << i
}

func isNull(n ast.Node) bool {
	_, null := n.(*ast.NullNode)
	return null || isNil(n)
}

// appendList loads the sequence n of mappings, appending each to dst. Item
// indices in paths continue from len(dst), so lists merge across files.
func appendList[T any](l *loader, path string, n ast.Node, dst []T, fields []field[T]) []T {
	seq, ok := l.sequence(path, n)
	if !ok {
		return dst
	}
	offset := len(dst)
	dst = slices.Grow(dst, len(seq.Values))
	for i, item := range seq.Values {
		ip := indexPath(path, offset+i)
		l.record(ip, item)
		var t T
		mapping(l, ip, item, &t, fields)
		dst = append(dst, t)
	}
	return dst
}

func fieldNames[T any](fields []field[T]) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// firstKey returns the first key of m spelled key.
func firstKey(m *ast.MappingNode, key string) ast.Node {
	for _, kv := range m.Values {
		if kv != nil && tokenText(kv.Key) == key {
			return kv.Key
		}
	}
	return nil
}

// key returns the text of a mapping key, which must be a plain scalar.
func (l *loader) key(path string, k ast.MapKeyNode) (string, bool) {
	switch k := k.(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.MergeKeyNode:
		l.errorAt(path, l.rangeOf(k), "YAML merge keys (<<) are not supported",
			"write the fields out in full")
		return "", false
	case ast.ScalarNode:
		if tk := nodeToken(k); tk != nil {
			return tk.Value, true
		}
	}
	if isNil(k) {
		return "", false
	}
	l.errorAt(path, l.rangeOf(k), "a mapping key must be a plain field name", "use one of the allowed field names")
	return "", false
}

func (l *loader) unknownField(parent, key string, k ast.Node, names []string) {
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

func (l *loader) duplicateKey(path string, k, first ast.Node) {
	if path == "gateways" || path == "routes" || path == "backends" {
		// A second top-level list is dropped, and its names with it.
		l.p.src.partial = true
	}
	l.errorAt(path, l.rangeOf(k), fmt.Sprintf("duplicate field %q (first set at line %d)", lastSegment(path), l.rangeOf(first).Line),
		"remove one of the two; only the first was read")
}

// sequence resolves n to a sequence, or reports why it is not one.
func (l *loader) sequence(path string, n ast.Node) (*ast.SequenceNode, bool) {
	v, ok := l.resolve(path, n)
	if !ok {
		return nil, false
	}
	seq, ok := v.(*ast.SequenceNode)
	if !ok {
		l.wrongType(path, v, "a list")
		return nil, false
	}
	return seq, true
}

// strings loads a list of non-empty strings; an explicit empty list is
// non-nil.
func (l *loader) strings(path string, n ast.Node) []string {
	seq, ok := l.sequence(path, n)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(seq.Values))
	for i, item := range seq.Values {
		ip := indexPath(path, i)
		l.record(ip, item)
		out = append(out, l.str(ip, item))
	}
	return out
}

// str loads a non-empty string; "" means it failed (and was reported).
func (l *loader) str(path string, n ast.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	var s string
	switch v := v.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		if v.Value == nil {
			break
		}
		s = v.Value.Value
	default:
		l.wrongType(path, v, "a string")
		return ""
	}
	if s == "" {
		l.fail(path, v, "empty string", "give a value, or remove the field to use its default")
	}
	return s
}

// integer loads an integer that fits in an int.
func (l *loader) integer(path string, n ast.Node) (int, bool) {
	v, ok := l.resolve(path, n)
	if !ok {
		return 0, false
	}
	in, ok := v.(*ast.IntegerNode)
	if !ok {
		l.wrongType(path, v, "an integer")
		return 0, false
	}
	switch x := in.Value.(type) {
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

func (l *loader) boolean(path string, n ast.Node) bool {
	v, ok := l.resolve(path, n)
	if !ok {
		return false
	}
	b, ok := v.(*ast.BoolNode)
	if !ok {
		l.wrongType(path, v, "true or false")
		return false
	}
	return b.Value
}

// resolve follows anchors and aliases to the node holding the value. Tags
// and unknown aliases are errors.
func (l *loader) resolve(path string, n ast.Node) (ast.Node, bool) {
	for range maxAliasHops {
		switch v := n.(type) {
		case *ast.AnchorNode:
			l.anchors[tokenText(v.Name)] = v.Value
			n = v.Value
		case *ast.AliasNode:
			target, ok := l.anchors[tokenText(v.Value)]
			if !ok {
				l.fail(path, v, fmt.Sprintf("unknown alias %q", tokenText(v.Value)),
					"define the anchor (&name) earlier in the same document, in a field Tollgate reads")
				return nil, false
			}
			n = target
		case *ast.TagNode:
			l.fail(path, v, fmt.Sprintf("YAML tag %s is not supported", tokenText(v)), "remove the tag")
			return nil, false
		default:
			return n, true
		}
	}
	l.fail(path, n, "YAML alias chain is too long or circular", "use the value directly")
	return nil, false
}

func (l *loader) wrongType(path string, n ast.Node, want string) {
	got, detail := describe(n)
	_, isString := n.(*ast.StringNode)
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

func isQuoted(n ast.Node) bool {
	tk := nodeToken(n)
	return tk != nil && (tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// describe names the kind of value n holds, with a generic fix.
func describe(n ast.Node) (kind, fix string) {
	const fix1 = "give a value of the expected type"
	if isNil(n) {
		return "no value", "give a value, or remove the field"
	}
	switch n.Type() {
	case ast.NullType:
		return "no value", "give a value, or remove the field"
	case ast.MappingType:
		return "a mapping", fix1
	case ast.SequenceType:
		return "a list", fix1
	case ast.StringType, ast.LiteralType:
		return fmt.Sprintf("string %q", tokenText(n)), fix1
	default:
		return fmt.Sprintf("%s %s", strings.ToLower(n.Type().String()), tokenText(n)), fix1
	}
}

func isScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return true
	}
	return false
}

// rangeOf returns where n starts; for a mapping, where its first key is.
func (l *loader) rangeOf(n ast.Node) Range {
	if m, ok := n.(*ast.MappingNode); ok && m != nil && len(m.Values) > 0 && m.Values[0] != nil && !isNil(m.Values[0].Key) {
		n = m.Values[0].Key
	}
	return tokenRange(l.file, nodeToken(n))
}

func tokenRange(file string, tk *token.Token) Range {
	if tk == nil || tk.Position == nil {
		return Range{File: file}
	}
	return Range{File: file, Line: tk.Position.Line, Column: tk.Position.Column}
}

// nodeToken returns n's token, or nil when n (or its token) is missing.
func nodeToken(n ast.Node) *token.Token {
	if isNil(n) {
		return nil
	}
	return n.GetToken()
}

// tokenText is the source text of n's token, for messages.
func tokenText(n ast.Node) string {
	tk := nodeToken(n)
	if tk == nil {
		return ""
	}
	return tk.Value
}

// isNil reports whether n is nil or a typed nil pointer; goccy's AST may
// hold either for a missing node.
func isNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
