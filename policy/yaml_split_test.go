package policy

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FuzzParseSplit checks that parseSplit, forced on whatever the size,
// gives the sequential parser's tree (every position and comment) or
// refuses, with the work shared among 2 and 3 goroutines and at each
// place it may cut; and that a ParseCache with small chunks does too,
// building the input twice (the second build reuses every part) and then
// a variant of it (a line doubled: parts reused around it). Failing
// inputs land in testdata/fuzz/FuzzParseSplit.
func FuzzParseSplit(f *testing.F) {
	for _, s := range []string{
		"routes:\n  - a: 1\n  # c\n  - b: 2\n",
		"routes:\n  - a: 1\n    # c\n  - b: 2\nz: 1\n",
		"k:\n- a\n- b: |\n   text\n- c\nz: 1\n",
		"v: 1\nr:\n  - \"a\n  - b\"\n  - c\n",
		"r:\n  - [a,\n  - b]\n  - c\n",
		"r:\n  - {a: 1,\n    b: 2}\n  -\n  - 'x\n\n    y'\n  - z\n",
		"r:\n   - a\n   - ? k\n   - b\n",
		"r:\n  - a: |+\n      kept\n\n  - b: >-\n      f\n  - c\nq: 2\n",
		"# h\nr: \n\n  - a # c\n  - b\n\n\nz: [1]\n",
		"r:\n- - a\n  - b\n- - c\n",
		"r:\r\n  - a: 1\r\n  - b: 2\r\n",
		"r:\n" + strings.Repeat("  - a: 1\n", 40) + "z: 1\n",
		"v: 1\nr:\n" + strings.Repeat("  - {n: a, m: {p: /x}}\n  - b: |\n      t\n\n", 12) + "  - c\nb:\n  - d\n",
		"r:\n" + strings.Repeat("- a\n- - b\n  - c\n- 'q\n\n  r'\n", 10),
		"r:\n" + strings.Repeat("  - x: 1\n    # h\n    y: 2\n  - z\n", 10) + "\n\nq: [1]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8192 {
			return
		}
		for _, w := range []int{2, 3} {
			if _, err := CompareSplitParse(data, w); err != nil {
				t.Fatalf("%d workers: %v", w, err)
			}
		}
		if _, err := CompareEachCut(data, 64); err != nil {
			t.Fatal(err)
		}
		c := NewSmallParseCache(16, 64, 256)
		for i, in := range [][]byte{data, data, doubleMiddleLine(data)} {
			if _, err := CompareCachedParse(c, in, 1+i%2); err != nil {
				t.Fatalf("cached build %d: %v", i, err)
			}
		}
	})
}

// doubleMiddleLine returns b with its middle line written twice.
func doubleMiddleLine(b []byte) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	i := len(lines) / 2
	return []byte(strings.Join(slices.Insert(lines, i, lines[i]), ""))
}

// TestSplitRefuses checks the inputs parseSplit leaves to the sequential
// parse, each for the reason named.
func TestSplitRefuses(t *testing.T) {
	items := strings.Repeat("  - name: r\n    backend: b\n", 50)
	tests := []struct{ name, text string }{
		{"one worker", ""},
		{"no sequence", "a: 1\nb: {c: 2}\n"},
		{"flow sequence", "r: [" + strings.Repeat("a, ", 200) + "b]\n"},
		{"anchor", "x: &a 1\nr:\n" + items},
		{"alias", "r:\n" + items + "  - *a\n"},
		{"tag", "r:\n" + items + "  - !!str 1\n"},
		{"explicit key", "r:\n" + items + "  - ? k\n"},
		{"tab", "r:\n" + items + "  - a:\tb\n"},
		{"lone CR", "r:\n" + items + "  - a\rb\n"},
		{"NEL", "r:\n" + items + "  - a\u0085b\n"},
		{"BOM inside", "r:\n" + items + "  - \uFEFFa\n"},
		{"second document", "r:\n" + items + "---\nz: 1\n"},
		{"directive after the key", "r:\n" + items + "%YAML 1.1\n"},
		{"comment before the first item", "r:\n  # c\n" + items},
		{"comment after the key", "r: # c\n" + items},
		{"comment after the sequence", "r:\n" + items + "# c\nz: 1\n"},
		{"comment on the last item", "r:\n" + items + "  - z # c\n"},
		{"item broken across a cut", "r:\n" + items + "  - \"a\n" + items + "  - b\"\n"},
		{"not in the root mapping", "a: \"x\nr:\n" + items + "\"\n"},
		{"not at column 0", "  r:\n  " + strings.ReplaceAll(items, "\n  ", "\n    ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workers := 2
			if tt.name == "one worker" {
				tt.text, workers = "r:\n"+items, 1
			}
			if _, ok := parseSplit([]byte(tt.text), workers); ok {
				t.Fatalf("parseSplit took:\n%s", tt.text)
			}
			if _, err := CompareSplitParse([]byte(tt.text), workers); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkParseSplit compares the sequential parse (workers=1) with
// parseSplit forced on (workers=2) on generated policies of a few sizes:
// wall time per parse and CPU time per parse (cpu-ns/op, all threads, GC
// included), to place splitMinBytes.
func BenchmarkParseSplit(b *testing.B) {
	for _, n := range []int{300, 1000, 2000, 4000, 10000} {
		content := genPolicy(n)
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("routes=%d/KiB=%d/workers=%d", n, len(content)>>10, w), func(b *testing.B) {
				start := cpuTime(b)
				for b.Loop() {
					if _, _, err := parseDocs(content, w, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
