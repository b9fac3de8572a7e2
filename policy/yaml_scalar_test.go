package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlainTextIsPlainKind: every scalar plainText takes for a string
// without looking further is one plainKind's full rules type as a string,
// on the special values and on random scalars made of the characters
// that start or make them.
func TestPlainTextIsPlainKind(t *testing.T) {
	full := func(v string) kind { // plainKind before plainText
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
	inputs := []string{"", "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE", ".inf",
		"-.Inf", ".nan", ".NaN", "<<", "0", "0x1F", "0o17", "1_000", "1e3", "1.5", "-1", "+1", "/svc", "r1", "b0",
		"none", "GET", "x", "Z9", "éa", "nope", "tru", "f"}
	const alphabet = "ntfNTFaAzZyY019+-._/<~xoe@[`{"
	r := rand.New(rand.NewPCG(3, 4))
	for range 50000 {
		b := make([]byte, 1+r.IntN(6))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, v := range inputs {
		if got, want := plainKind(v), full(v); got != want {
			t.Fatalf("plainKind(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestCheckTextIsScanText: checkText's fast acceptance accepts exactly
// what scanText's rune-by-rune walk accepts, and refuses with its
// diagnostic, on random texts of ASCII, line ends, NUL, CR and valid and
// broken UTF-8 sequences.
func TestCheckTextIsScanText(t *testing.T) {
	pieces := []string{"a", " ", "\n", "\r\n", "\r", "\x00", "é", "日", "\xff", "\xe6\x97", "\xed\xa0\x80", "\uFFFD", "#", "\t"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var b []byte
		for range r.IntN(12) {
			p := pieces[r.IntN(len(pieces))]
			if r.IntN(3) > 0 {
				p = pieces[r.IntN(3)] // mostly text, so that many inputs are accepted
			}
			b = append(b, p...)
		}
		f := File{Name: "f.yaml", Content: b}
		got, want := checkText(f), scanText(f)
		if (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Fatalf("checkText(%q) = %v, scanText = %v", b, got, want)
		}
	}
}

// TestMatchTextProblemFastPath: matchTextProblem's printable-ASCII
// shortcut finds no problem only where its full checks find none.
func TestMatchTextProblemFastPath(t *testing.T) {
	for c := range 256 {
		for _, v := range []string{string(rune(c)), "/a" + string(rune(c)), "/a" + string([]byte{byte(c)})} {
			_, summary := matchTextProblem(v)
			full := len(v) > maxHeaderValue || strings.ContainsFunc(v, isControl) || strings.ContainsFunc(v, isBidiControl)
			if (summary != "") != full {
				t.Errorf("matchTextProblem(%q) = %q, full checks say %v", v, summary, full)
			}
		}
	}
	if _, summary := matchTextProblem(strings.Repeat("a", maxHeaderValue+1)); summary == "" {
		t.Error("a value over maxHeaderValue passes")
	}
}

// TestPathArenaIsFieldPath: the arena's paths equal fieldPath's and
// indexPath's, and stay unchanged while the arena builds more, across
// blocks and for paths longer than a block.
func TestPathArenaIsFieldPath(t *testing.T) {
	var a pathArena
	type built struct{ got, want string }
	var all []built
	r := rand.New(rand.NewPCG(7, 8))
	base := ""
	for i := range 20000 {
		name := []string{"name", "match", "pathPrefix", "", strings.Repeat("x", pathBlock+10)}[r.IntN(5)]
		if i%2 == 0 {
			all = append(all, built{a.field(base, name), fieldPath(base, name)})
		} else {
			n := r.IntN(100000)
			all = append(all, built{a.index(base, n), indexPath(base, n)})
		}
		base = []string{"", "routes", "routes[3]", all[len(all)-1].want}[r.IntN(4)]
		if len(base) > 3*pathBlock {
			base = "routes"
		}
	}
	for i, b := range all {
		if b.got != b.want {
			t.Fatalf("path %d = %q, want %q", i, b.got, b.want)
		}
	}
}
