package policy

import (
	"math/rand/v2"
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
