package controlplane

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"same", "x\ny\nz", "x\ny\nz", ""},
		{"changed middle", "a\nb\nc\nd\ne", "a\nb\nX\nd\ne", " b\n-c\n+X\n d\n"},
		{"added end", "a\nb", "a\nb\nc", " b\n+c\n"},
		{"removed start", "a\nb\nc", "b\nc", "-a\n b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lineDiff(strings.Split(tt.a, "\n"), strings.Split(tt.b, "\n"))
			if got != tt.want {
				t.Errorf("lineDiff() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestLCSOpsSkipsCommonPrefixIdentically: matching the common prefix
// without the table gives exactly the edit script of the full table.
func TestLCSOpsSkipsCommonPrefixIdentically(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "{", "}"}
	pick := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[rng.IntN(len(words))]
		}
		return out
	}
	for i := 0; i < 2000; i++ {
		prefix := pick(rng.IntN(5))
		a := append(append([]string{}, prefix...), pick(rng.IntN(8))...)
		b := append(append([]string{}, prefix...), pick(rng.IntN(8))...)
		if got, want := lcsOps(a, b), lcsTable(a, b); !slices.Equal(got, want) {
			t.Fatalf("lcsOps(%q, %q) = %v, full table gives %v", a, b, got, want)
		}
	}
}
