package envoymod

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The shapes TestContractOf compares: base, and one change each.
type (
	shapeLeaf struct {
		N    int           `json:"n"`
		Wait time.Duration `json:"wait,omitempty"`
	}
	shapeBase struct {
		Name   string               `json:"name"`
		Leaves []shapeLeaf          `json:"leaves"`
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
		hidden int                  // unexported: not encoded
		Skip   string               `json:"-"`
	}
	// Same wire shape: fields reordered, a Go-only rename, another
	// unexported field and another "-" field.
	shapeSame struct {
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
		Leaves []shapeLeaf          `json:"leaves"`
		Title  string               `json:"name"`
		other  bool                 // unexported: not encoded
		Gone   int                  `json:"-"`
	}
	shapeAdded struct {
		Name   string               `json:"name"`
		Leaves []shapeLeaf          `json:"leaves"`
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
		Charge bool                 `json:"charge,omitempty"`
	}
	shapeRenamed struct {
		Label  string               `json:"label"`
		Leaves []shapeLeaf          `json:"leaves"`
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
	}
	shapeRetyped struct {
		Name   []string             `json:"name"`
		Leaves []shapeLeaf          `json:"leaves"`
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
	}
	shapeOption struct {
		Name   string               `json:"name,omitempty"`
		Leaves []shapeLeaf          `json:"leaves"`
		ByName map[string]shapeLeaf `json:"byName,omitempty"`
	}
	// A field added two levels down (in the leaf type).
	shapeDeepLeaf struct {
		N    int           `json:"n"`
		Wait time.Duration `json:"wait,omitempty"`
		IETF *struct {
			Policy string `json:"policy"`
		} `json:"ietf,omitempty"`
	}
	shapeDeep struct {
		Name   string                   `json:"name"`
		Leaves []shapeDeepLeaf          `json:"leaves"`
		ByName map[string]shapeDeepLeaf `json:"byName,omitempty"`
	}
	// A duration read as an int of seconds: same JSON kind family, another
	// meaning.
	shapeUnitLeaf struct {
		N    int   `json:"n"`
		Wait int64 `json:"wait,omitempty"`
	}
	shapeUnit struct {
		Name   string                   `json:"name"`
		Leaves []shapeUnitLeaf          `json:"leaves"`
		ByName map[string]shapeUnitLeaf `json:"byName,omitempty"`
	}
	// A recursive type.
	shapeTree struct {
		Name     string      `json:"name"`
		Children []shapeTree `json:"children"`
	}
	// Custom JSON: only the type's name shows.
	shapeCustom struct {
		At time.Time `json:"at"`
	}
)

// TestContractOf: the identifier is stable across calls and for a shape
// that encodes the same JSON (fields reordered, Go-only renames, fields
// encoding/json skips), and changes when a field is added (also deep
// down), renamed in JSON, retyped, given another tag option, when a
// duration becomes a plain integer, with the revision, and with the
// second type. A recursive type terminates.
func TestContractOf(t *testing.T) {
	of := func(v any) string { return contractOf(1, nil, reflect.TypeOf(v)) }
	base := of(shapeBase{})
	if !regexp.MustCompile(`^r1-[0-9a-f]{16}$`).MatchString(base) {
		t.Fatalf("contract %q, want r1- and 16 hex digits", base)
	}
	if again := of(shapeBase{}); again != base {
		t.Fatalf("not stable: %s then %s", base, again)
	}
	if same := of(shapeSame{}); same != base {
		t.Errorf("same JSON shape: %s, want %s\n%s\n%s", same, base,
			shapeOf(reflect.TypeFor[shapeBase](), nil), shapeOf(reflect.TypeFor[shapeSame](), nil))
	}
	changed := map[string]string{
		"field added":        of(shapeAdded{}),
		"field renamed":      of(shapeRenamed{}),
		"field retyped":      of(shapeRetyped{}),
		"tag option":         of(shapeOption{}),
		"deep field added":   of(shapeDeep{}),
		"duration to int64":  of(shapeUnit{}),
		"revision":           contractOf(2, nil, reflect.TypeFor[shapeBase]()),
		"with a second type": contractOf(1, nil, reflect.TypeFor[shapeBase](), reflect.TypeFor[shapeLeaf]()),
		"a shared constant":  contractOf(1, []string{"KeyRoute=route"}, reflect.TypeFor[shapeBase]()),
	}
	seen := map[string]string{base: "base"}
	for what, c := range changed {
		if prev, dup := seen[c]; dup {
			t.Errorf("%s: contract %s, the same as %s", what, c, prev)
		}
		seen[c] = what
	}
	if s := shapeOf(reflect.TypeFor[shapeTree](), nil); !strings.Contains(s, "ref(envoymod.shapeTree)") {
		t.Errorf("recursive type: shape %s, want a reference", s)
	}
	if s := shapeOf(reflect.TypeFor[shapeCustom](), nil); !strings.Contains(s, "custom(time.Time)") {
		t.Errorf("custom JSON: shape %s, want custom(time.Time)", s)
	}
}

// TestContractID: this build's identifier is stable, of the current
// revision, and CheckContract accepts it alone (an empty one, an older
// one and a changed shape's are refused, the error naming both and the
// fix).
func TestContractID(t *testing.T) {
	id := ContractID()
	rev := fmt.Sprintf("r%d-", ContractRevision)
	if ContractID() != id || !strings.HasPrefix(id, rev) {
		t.Fatalf("ContractID %q then %q, want a stable %s…", id, ContractID(), rev)
	}
	if err := CheckContract(id); err != nil {
		t.Fatalf("own contract refused: %v", err)
	}
	older := contractOf(ContractRevision, vocabulary(), reflect.TypeFor[shapeBase]())
	for _, got := range []string{"", older, "r0-" + strings.TrimPrefix(id, rev)} {
		err := CheckContract(got)
		if err == nil {
			t.Fatalf("contract %q accepted", got)
		}
		for _, want := range []string{id, "same Tollgate version"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("contract %q: %v, want it to name %q", got, err, want)
			}
		}
	}
}

// TestVocabularyIsComplete: every exported constant of this package and
// of extauthz/contract (read from their source files) is in vocabulary,
// so a new shared name or bound changes ContractID without a hand-made
// bump, and no name is listed twice.
func TestVocabularyIsComplete(t *testing.T) {
	want := append(exportedConsts(t, "."), exportedConsts(t, "../contract")...)
	var got []string
	for _, v := range vocabulary() {
		if name, _, _ := strings.Cut(v, "="); !strings.HasPrefix(name, "ir.") {
			got = append(got, name)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("vocabulary names %v\nexported constants %v", got, want)
	}
}

// exportedConsts lists the exported constants declared in dir's non-test
// Go files.
func exportedConsts(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				names = append(names, exportedNames(g)...)
			}
		}
	}
	return names
}

// exportedNames lists the exported names a const declaration declares.
func exportedNames(g *ast.GenDecl) []string {
	var names []string
	for _, spec := range g.Specs {
		for _, n := range spec.(*ast.ValueSpec).Names {
			if n.IsExported() {
				names = append(names, n.Name)
			}
		}
	}
	return names
}

// rlqsConstants are policy/ir constants the module's code names that are
// not read from the configuration: the RLQS protocol between the module
// and the quota server (bucket id keys, the domain, the client id
// metadata), whose skew docs/operations/envoy-module.md describes; the
// contract identifier covers only what the translator writes.
var rlqsConstants = map[string]bool{
	"BucketKeyBucket": true, "BucketKeyConsumer": true, "RateLimitQuotaDomain": true,
	"RateLimitQuotaClientHeader": true,
}

// TestVocabularyCoversIRConstants: every policy/ir constant named in the
// code the module runs (extauthz, whose decisions it makes, and
// envoymodule) is in vocabulary, but for the RLQS protocol's: the method
// names the module compares with contract.KeyMethods' values, the signed
// keys' issuer it verifies. A renamed ir.MethodJWT changed what a route's
// methods mean to a module of another build without changing ContractID
// (a module of the older build would refuse the renamed method: 401s
// instead of a NACK).
func TestVocabularyCoversIRConstants(t *testing.T) {
	inVocab := map[string]bool{}
	for _, v := range vocabulary() {
		name, _, _ := strings.Cut(v, "=")
		inVocab[name] = true
	}
	irConsts := map[string]bool{}
	for _, n := range exportedConsts(t, "../../policy/ir") {
		irConsts[n] = true
	}
	ref := regexp.MustCompile(`\bir\.([A-Z][A-Za-z0-9]*)`)
	for _, root := range []string{"../../extauthz", "../../envoymodule"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range ref.FindAllSubmatch(src, -1) {
				if n := string(m[1]); irConsts[n] && !inVocab["ir."+n] && !rlqsConstants[n] {
					t.Errorf("%s names ir.%s, which is not in vocabulary", path, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
