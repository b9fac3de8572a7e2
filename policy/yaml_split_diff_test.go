package policy_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/policy"
)

// TestParseSplitDifferential checks that the parallel parse of a large
// file (parseSplit, forced on whatever the size) gives the sequential
// parser's tree, every node's position and comments included, or leaves
// the file to it: on every input of TestLoaderDifferential (fixtures,
// fuzz corpora, documentation blocks, generated malformed inputs), on
// generated files with many items in the shapes YAML allows (comments,
// block and multi-line scalars, flow collections, blank lines, nested
// sequences, odd indentations, items at the key's indentation, CRLF) and
// on malformed variants of those. The same for a ParseCache with small
// chunks, building each input after the previous one (parts reused where
// their text recurs). Under the race detector it checks a sample of the
// inputs (policy.RaceSample).
func TestParseSplitDifferential(t *testing.T) {
	var contents [][]byte
	for _, in := range loadDiffInputs(t) {
		for _, f := range in.files {
			contents = append(contents, f.Content)
		}
	}
	corpus := len(contents)
	for _, g := range splitGenerated() {
		contents = append(contents, []byte(g.text))
	}
	small := genSplitFile(rand.New(rand.NewPCG(7, 7)), splitShape{items: 40, indent: 2, features: allSplitFeatures})
	for i, m := range mutations([]byte(small), 99) {
		if i%3 == 0 {
			contents = append(contents, m)
		}
	}
	all := len(contents)
	contents = policy.RaceSample(contents)
	splits, cuts, cached, hits := 0, 0, 0, 0
	cache := policy.NewSmallParseCache(64, 256, 1024)
	for i, c := range contents {
		st, err := policy.CompareCachedParse(cache, c, 1+i%2)
		if err != nil {
			t.Fatalf("input %d (%d bytes), through the cache: %v\n%s", i, len(c), err, c)
		}
		if st.Taken {
			cached, hits = cached+1, hits+st.Hits
		}
		n, err := policy.CompareEachCut(c, 24)
		if err != nil {
			t.Fatalf("input %d (%d bytes): %v\n%s", i, len(c), err, c)
		}
		cuts += n
		for _, w := range []int{2, 3, 8} {
			split, err := policy.CompareSplitParse(c, w)
			if err != nil {
				t.Fatalf("input %d (%d bytes), %d workers: %v\n%s", i, len(c), w, err, c)
			}
			if split {
				splits++
			}
		}
	}
	t.Logf("%d of %d inputs (%d from the loader's corpus), %d parses split and equal, %d single cuts equal, %d cached parses equal (%d parts reused)",
		len(contents), all, corpus, splits, cuts, cached, hits)
}

// TestParseSplitTakesLargeFiles checks that the generated files that hold
// nothing parseSplit refuses are split (so that the differential test
// compares something), and that Load gives the same outcome (diagnostics,
// policy, positions) with one and two threads on a file above the size
// where Load splits, valid or not (under the race detector the valid one
// only: policy.RaceSample).
func TestParseSplitTakesLargeFiles(t *testing.T) {
	for _, g := range splitGenerated() {
		t.Run(g.name, func(t *testing.T) {
			split, err := policy.CompareSplitParse([]byte(g.text), 2)
			if err != nil {
				t.Fatal(err)
			}
			if split != g.splits {
				t.Fatalf("split %v, want %v", split, g.splits)
			}
		})
	}
	big := genSplitFile(rand.New(rand.NewPCG(1, 2)), splitShape{items: 6000, indent: 2, features: allSplitFeatures})
	if len(big) < policy.SplitMinBytes {
		t.Fatalf("generated %d bytes, want at least %d", len(big), policy.SplitMinBytes)
	}
	if split, err := policy.CompareSplitParse([]byte(big), 2); !split || err != nil {
		t.Fatalf("large file: split %v, %v", split, err)
	}
	at := strings.Index(big[len(big)*3/4:], "\n  - name:") + len(big)*3/4 + 1
	for _, v := range policy.RaceSample([]struct{ name, text string }{
		{"valid shape", big},
		{"syntax error", big[:at] + "  - {unclosed: [\n" + big[at:]},
		{"unknown field", big[:at] + "  - nmae: r\n" + big[at:]},
	}) {
		files := []policy.File{{Name: "f.yaml", Content: []byte(v.text)}}
		prev := runtime.GOMAXPROCS(1)
		one := loadOutcome(files)
		runtime.GOMAXPROCS(max(prev, 2))
		two := loadOutcome(files)
		runtime.GOMAXPROCS(prev)
		if one != two {
			t.Errorf("%s: Load's outcome differs between one and two threads", v.name)
		}
	}
}

type splitCase struct {
	name   string
	text   string
	splits bool // parseSplit takes it
}

// splitGenerated returns generated files, each with a few hundred items.
func splitGenerated() []splitCase {
	var out []splitCase
	for i, sh := range []splitShape{
		{items: 300, indent: 2},
		{items: 300, indent: 0},
		{items: 300, indent: 3, features: allSplitFeatures},
		{items: 300, indent: 0, features: allSplitFeatures},
		{items: 300, indent: 2, features: allSplitFeatures},
		{items: 300, indent: 1, features: allSplitFeatures, crlf: true},
		{items: 300, indent: 2, features: allSplitFeatures, after: true},
		{items: 300, indent: 0, features: allSplitFeatures, after: true},
		{items: 300, indent: 4, features: allSplitFeatures, after: true, crlf: true},
	} {
		rng := rand.New(rand.NewPCG(uint64(i), 3))
		out = append(out, splitCase{name: fmt.Sprintf("shape%d", i), text: genSplitFile(rng, sh), splits: true})
	}
	refused := map[string]string{
		"anchor":       "x: &a 1\n",
		"alias":        "x: *a\n",
		"tag":          "x: !!str 1\n",
		"tab":          "x:\t1\n",
		"lone-cr":      "x: 1\ry: 2\n",
		"flow-top":     "",
		"marker-after": "---\n",
		"explicit-key": "- ? k\n",
	}
	for name, extra := range refused {
		rng := rand.New(rand.NewPCG(11, 3))
		text := genSplitFile(rng, splitShape{items: 100, indent: 2, features: allSplitFeatures, extra: extra})
		if name == "flow-top" {
			text = "version: 1\nroutes: [" + strings.Repeat("{name: r},\n  ", 100) + "{name: s}]\n"
		}
		out = append(out, splitCase{name: name, text: text})
	}
	return out
}

// splitShape says what genSplitFile generates.
type splitShape struct {
	items    int
	indent   int    // the items' indentation
	features int    // how many of splitItems to use (the first is the plain one)
	after    bool   // more top-level keys after the sequence
	crlf     bool   // CRLF line ends
	extra    string // a line written in the middle of the sequence, at its indentation
}

var allSplitFeatures = len(splitItems)

// splitItems are item templates: {p} is the items' indentation, {q} the
// indentation of an item's mapping, {i} the item's number.
var splitItems = []string{
	"{p}- name: r{i}\n{q}backend: b\n{q}match: {path: /x{i}, methods: [GET, POST]}\n",
	"{p}- name: r{i} # line comment\n{q}desc: |\n{q}  line one\n{q}   line two\n{q}timeout: 5s\n",
	"{p}- name: r{i}\n{q}desc: >-\n{q}  folded\n\n{q}  text\n",
	"{p}- name: r{i}\n{q}keep: |+\n{q}  kept\n\n",
	"{p}- name: r{i}\n{q}# head comment\n{q}hosts:\n{q}- a.example\n{q}- b.example\n",
	"{p}- - nested{i}\n{p}  - - deeper\n{p}    - more\n",
	"{p}- \"quoted {i}\n{q}continued \\\" - x\"\n",
	"{p}- plain scalar {i}\n{q}continued plain\n",
	"{p}-\n{q}name: r{i}\n",
	"{p}- [a{i},\n{q}b]\n",
	"{p}- {name: r{i}, x: 'single ''quoted'''}\n",
	"{p}-\n",
	"{p}- name: r{i}\n{q}list: [\n{q}  a, b\n{q}]\n",
	"{p}# comment between items\n",
	"\n",
	"{p}- name: é{i}  # ünïcode\n",
	"{p}- 'single\n\n{q}multi'\n",
	"{p}- key: value\n{q}# foot comment\n\n",
	"{p}-   name: r{i}\n{q}  odd: indent\n",
	"{p}- name: r{i}\n{q}desc: |2\n{q}    explicit indent\n",
	"# comment at column 0\n",
	"{p}- |\n{q}- not an item\n",
}

// genSplitFile generates a policy-like file whose largest sequence
// (routes:) has sh.items items drawn from splitItems, the first and the
// last plain.
func genSplitFile(rng *rand.Rand, sh splitShape) string {
	var b strings.Builder
	b.WriteString("# generated\nversion: 1\nbackends:\n  - name: b\n    endpoints: [\"10.0.0.1:80\"]\n\nroutes:\n")
	ind := strings.Repeat(" ", sh.indent)
	inner := ind + "  "
	for i := range sh.items {
		if sh.extra != "" && i == sh.items/2 {
			b.WriteString(ind + sh.extra)
		}
		k := 0
		if sh.features > 0 && i > 0 && rng.IntN(3) == 0 {
			k = rng.IntN(sh.features)
		}
		b.WriteString(fillItem(splitItems[k], ind, inner, i))
	}
	b.WriteString(fillItem(splitItems[0], ind, inner, sh.items))
	if sh.after {
		b.WriteString("gateways:\n  - name: g\n    listeners: [{name: l, port: 1}]\n# trailing comment\n")
	}
	if sh.crlf {
		return strings.ReplaceAll(b.String(), "\n", "\r\n")
	}
	return b.String()
}

func fillItem(tmpl, ind, inner string, i int) string {
	return strings.NewReplacer("{p}", ind, "{q}", inner, "{i}", strconv.Itoa(i)).Replace(tmpl)
}
