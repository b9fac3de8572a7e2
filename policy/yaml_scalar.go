package policy

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kind is what a YAML value is to the loader. Plain scalars are typed by
// the rules of YAML 1.2's core schema as Tollgate has always read them:
// null, true/false (in three spellings), .inf, .nan, integers in decimal,
// 0x, 0o, 0b and leading-zero octal, with "_" separators, floats with one
// "."; anything else is a string.
type kind int

const (
	kindNull kind = iota
	kindBool
	kindInteger
	kindFloat
	kindInfinity
	kindNan
	kindString  // plain or quoted
	kindLiteral // | or >
	kindMergeKey
	kindMapping
	kindSequence
	kindAlias
	kindAnchor
	kindTag
	kindExplicitKey
)

// kindNames are the names "expected ..., got ..." messages use.
var kindNames = [...]string{
	kindNull: "Null", kindBool: "Bool", kindInteger: "Integer", kindFloat: "Float", kindInfinity: "Infinity",
	kindNan: "Nan", kindString: "String", kindLiteral: "Literal", kindMergeKey: "MergeKey", kindMapping: "Mapping",
	kindSequence: "Sequence", kindAlias: "Alias", kindAnchor: "Anchor", kindTag: "Tag", kindExplicitKey: "MappingKey",
}

func (k kind) String() string { return kindNames[k] }

// kindOfNode returns n's kind.
func kindOfNode(n *yaml.Node) kind {
	switch n.Kind {
	case yaml.MappingNode:
		return kindMapping
	case yaml.SequenceNode:
		return kindSequence
	case yaml.AliasNode:
		return kindAlias
	case anchorNode:
		return kindAnchor
	case tagNode:
		return kindTag
	case explicitKeyNode:
		return kindExplicitKey
	case yaml.ScalarNode:
		return scalarKind(n)
	}
	return kindNull
}

func scalarKind(n *yaml.Node) kind {
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return kindString
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return kindLiteral
	}
	return plainKind(n.Value)
}

// plainKind types a plain scalar.
func plainKind(v string) kind {
	if plainText(v) {
		return kindString // most scalars of a policy: names, paths
	}
	switch v {
	case "", "null", "Null", "NULL", "~":
		return kindNull
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return kindBool
	case ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF":
		return kindInfinity
	case ".nan", ".NaN", ".NAN":
		return kindNan
	case "<<":
		return kindMergeKey
	}
	if _, isFloat, ok := parseNumber(v); ok {
		if isFloat {
			return kindFloat
		}
		return kindInteger
	}
	return kindString
}

// plainText reports whether the plain scalar v is a string for certain:
// it starts with "/" or with a letter that starts no null, boolean or
// merge key (numbers, infinities and NaNs start with a digit, a sign, a
// dot or "_").
func plainText(v string) bool {
	if v == "" {
		return false
	}
	c := v[0] | 0x20 // lower case, for letters
	return v[0] == '/' || c >= 'a' && c <= 'z' && c != 'n' && c != 't' && c != 'f'
}

// parseNumber parses a plain scalar as a number: an int64 for a negative
// integer, a uint64 for another, a float64 for a float.
func parseNumber(v string) (num any, isFloat, ok bool) {
	if v == "" || v[0] == '_' || strings.Count(v, ".") > 1 {
		return nil, false, false
	}
	if c := strings.TrimLeft(v, "+-"); c == "" || !(c[0] >= '0' && c[0] <= '9' || c[0] == '.' || c[0] == '_') {
		return nil, false, false
	}
	dot := strings.Contains(v, ".")
	neg := strings.HasPrefix(v, "-")
	norm := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(v, "+"), "-"), "_", "")
	base := 10
	switch {
	case strings.HasPrefix(norm, "0x"):
		norm, base = norm[2:], 16
	case strings.HasPrefix(norm, "0o"):
		norm, base = norm[2:], 8
	case strings.HasPrefix(norm, "0b"):
		norm, base = norm[2:], 2
	case strings.HasPrefix(norm, "0") && len(norm) > 1 && !dot:
		base = 8
	case dot:
		base = 0
	}
	if neg {
		norm = "-" + norm
	}
	var err error
	switch {
	case base == 0:
		num, err = strconv.ParseFloat(norm, 64)
		isFloat = true
	case neg:
		num, err = strconv.ParseInt(norm, base, 64)
	default:
		num, err = strconv.ParseUint(norm, base, 64)
	}
	return num, isFloat, err == nil
}
