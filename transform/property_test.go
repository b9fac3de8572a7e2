package transform

import (
	"encoding/json/jsontext"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestRoundTripGenerated is a property test: random JSON documents of the
// documented subset (every kind of value, nested up to 6 levels, keys that
// are and are not XML names, strings with escapes and non-ASCII text,
// number literals in every JSON form) survive JSON → XML → JSON unchanged.
func TestRoundTripGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		doc := genValue(r, 0)
		if !jsontext.Value(doc).IsValid() {
			t.Fatalf("generator produced invalid JSON %s", doc)
		}
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkRoundTrip(t, []byte(doc)) })
	}
}

var genKeys = []string{"a", "id", "item", "member", "_x", "a-b.c", "1st", "", "with space", "xmlns", "XMLthing", "@attr", "#text", "é", "ключ", "a:b", "json:type"}

var genStrings = []string{"", " ", "plain", "<tag> & \"quotes\" 'apos'", "tab\there", "cr\rlf\n", "é😀漢字", "]]>", "  padded  ", "\u00a0nbsp", "\ufffd"}

var genNumbers = []string{"0", "-0", "1", "-17", "3.14", "1.50", "1e3", "-2.5E-10", "12345678901234567890123", "0.000001"}

func genValue(r *rand.Rand, depth int) string {
	k := r.IntN(8)
	if depth >= 6 {
		k = r.IntN(4)
	}
	switch k {
	case 0:
		return strconv.Quote(genStrings[r.IntN(len(genStrings))])
	case 1:
		return genNumbers[r.IntN(len(genNumbers))]
	case 2:
		return []string{"true", "false", "null"}[r.IntN(3)]
	case 3:
		return `"` + strings.Repeat("x", r.IntN(5)) + `"`
	case 4, 5:
		return genObject(r, depth)
	default:
		return genArray(r, depth)
	}
}

func genObject(r *rand.Rand, depth int) string {
	n := r.IntN(5)
	seen := map[string]bool{}
	var parts []string
	for range n {
		key := genKeys[r.IntN(len(genKeys))]
		if seen[key] {
			continue
		}
		seen[key] = true
		parts = append(parts, strconv.Quote(key)+":"+genValue(r, depth+1))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func genArray(r *rand.Rand, depth int) string {
	n := r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = genValue(r, depth+1)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
