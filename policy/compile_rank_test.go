package policy

import (
	"cmp"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestComparePrecedenceIsLexicographic compares comparePrecedence, which
// compares a criterion only when the ones before tie, with the
// lexicographic comparison it replaced, on random keys drawn from few
// values so that every criterion ties often.
func TestComparePrecedenceIsLexicographic(t *testing.T) {
	lexicographic := func(a, b precedence) int {
		return cmp.Or(
			cmp.Compare(a.kind, b.kind),
			cmp.Compare(b.length, a.length),
			-compareBool(a.hasHosts, b.hasHosts),
			cmp.Compare(b.headers, a.headers),
			-compareBool(a.hasMethods, b.hasMethods),
			strings.Compare(a.name, b.name),
		)
	}
	r := rand.New(rand.NewPCG(1, 2))
	key := func() precedence {
		return precedence{kind: r.IntN(3), length: r.IntN(3), hasHosts: r.IntN(2) == 0, headers: r.IntN(3),
			hasMethods: r.IntN(2) == 0, name: []string{"a", "b", "ab", ""}[r.IntN(4)]}
	}
	for range 100000 {
		a, b := key(), key()
		if got, want := comparePrecedence(a, b), lexicographic(a, b); got != want {
			t.Fatalf("comparePrecedence(%+v, %+v) = %d, want %d", a, b, got, want)
		}
	}
}
