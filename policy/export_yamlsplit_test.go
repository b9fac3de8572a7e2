package policy

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// CompareSplitParse parses content sequentially and with parseSplit
// forced on (whatever content's size) with workers goroutines. split
// reports whether parseSplit took the file; err says how its tree, raw
// and as parseDocs wraps it, differs from the sequential parse's.
func CompareSplitParse(content []byte, workers int) (split bool, err error) {
	raw, rawErr := parseOne(bytes.NewReader(content))
	want, _, wantErr := parseDocs(content, 1, nil)
	doc, ok := parseSplit(content, workers)
	if !ok {
		return false, nil
	}
	if rawErr != nil || wantErr != nil {
		return true, fmt.Errorf("parseSplit took a file the parser refuses: %v, %v", rawErr, wantErr)
	}
	if d := nodeDiff(raw, doc, "doc"); d != "" {
		return true, fmt.Errorf("raw tree differs: %s", d)
	}
	got, _, gotErr := parseDocs(content, workers, nil)
	if gotErr != nil || len(got) != 1 || len(want) != 1 {
		return true, fmt.Errorf("parseDocs: %d documents, %v; sequential %d", len(got), gotErr, len(want))
	}
	if d := nodeDiff(want[0], got[0], "body"); d != "" {
		return true, fmt.Errorf("wrapped tree differs: %s", d)
	}
	return true, nil
}

// nodeDiff describes the first difference between the trees a and b, by
// every field of yaml.Node; "" when they are equal.
func nodeDiff(a, b *yaml.Node, path string) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("%s: %v vs %v", path, a, b)
		}
		return ""
	}
	type fields struct {
		Kind                           yaml.Kind
		Style                          yaml.Style
		Tag, Value, Anchor             string
		HeadComment, LineComment, Foot string
		Line, Column, Content          int
	}
	fa := fields{a.Kind, a.Style, a.Tag, a.Value, a.Anchor, a.HeadComment, a.LineComment, a.FootComment, a.Line, a.Column, len(a.Content)}
	fb := fields{b.Kind, b.Style, b.Tag, b.Value, b.Anchor, b.HeadComment, b.LineComment, b.FootComment, b.Line, b.Column, len(b.Content)}
	if fa != fb {
		return fmt.Sprintf("%s:\n  sequential %#v\n  split      %#v", path, fa, fb)
	}
	if d := nodeDiff(a.Alias, b.Alias, path+"*"); d != "" {
		return d
	}
	for i := range a.Content {
		if d := nodeDiff(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// SplitMinBytes is splitMinBytes, for tests that generate files above it.
const SplitMinBytes = splitMinBytes

// CompareEachCut is CompareSplitParse for two chunks cut at each place
// parseSplit may cut (at most maxCuts of them, evenly spread), so that
// every cut is checked, not only those the work share picks. It returns
// how many cuts it compared.
func CompareEachCut(content []byte, maxCuts int) (int, error) {
	raw, rawErr := parseOne(bytes.NewReader(content))
	if !splittableText(content) {
		return 0, nil
	}
	lines := lineOffsets(content)
	span, ok := largestSequence(content, lines)
	if !ok {
		return 0, nil
	}
	rest := restText(content, lines, span)
	step := max(1, len(span.cuts)/maxCuts)
	n := 0
	for i := 1; i < len(span.cuts); i += step {
		doc, ok := parseParts(content, lines, span, rest, []int{span.first, span.cuts[i]})
		if !ok {
			continue
		}
		n++
		if rawErr != nil {
			return n, fmt.Errorf("cut at line %d: parseSplit took a file the parser refuses: %v", span.cuts[i]+1, rawErr)
		}
		if d := nodeDiff(raw, doc, "doc"); d != "" {
			return n, fmt.Errorf("cut at line %d: %s", span.cuts[i]+1, d)
		}
	}
	return n, nil
}
