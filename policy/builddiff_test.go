package policy_test

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
)

var updateBuildDiff = flag.Bool("update-builddiff", false, "rewrite testdata/builddiff.sum with the current outcomes")

// buildDiffSums holds, per input, a hash of its validate-and-compile
// outcome (buildOutcome) as recorded at main 24fd3a8, before the route
// checks built their field paths only when reporting.
const buildDiffSums = "testdata/builddiff.sum"

// TestBuildDifferential compares what the prescan, Validate and Compile
// make of
// TestLoaderDifferential's inputs (fixtures, fuzz corpora, docs blocks
// and the malformed variants generated from them) with the outcome
// recorded before the validation's and the hash's hot paths were
// rewritten: every diagnostic (severity, position, path, text, in
// order), the IR and the version id must be the same.
func TestBuildDifferential(t *testing.T) {
	inputs := loadDiffInputs(t)
	inputs = append(inputs, loadDiffInput{name: "gen/300", files: []policy.File{{Name: "gen.yaml", Content: policy.GenPolicy(300)}}})
	for i, route := range routeCheckCases {
		content := "version: 1\ngateways: [{name: g, listeners: [{name: http, port: 8080}]}]\n" +
			"backends: [{name: b, endpoints: [\"10.0.0.1:80\"]}, {name: c, endpoints: [\"10.0.0.2:80\"]}]\n" +
			"auth: {jwt: [{name: corp, issuer: https://idp.example.com/, jwksUri: https://idp.example.com/jwks.json}]}\n" +
			"rateLimits: {anonymous: [{requests: 10, per: 1m}]}\nroutes:\n" + route
		inputs = append(inputs, loadDiffInput{name: fmt.Sprintf("routecheck/%d", i), files: []policy.File{{Name: "r.yaml", Content: []byte(content)}}})
	}
	var lines []string
	compiled := 0
	for _, in := range inputs {
		outcome, cfg := buildOutcome(in.files)
		lines = append(lines, fmt.Sprintf("%s %x", in.name, sha256.Sum256([]byte(outcome))))
		if cfg != nil {
			compiled++
			checkHashIsMarshalSum(t, in.name, cfg)
		}
	}
	if compiled < 150 {
		t.Errorf("only %d of %d inputs compiled: is the input set right?", compiled, len(inputs))
	}
	sort.Strings(lines)
	if *updateBuildDiff {
		if err := os.WriteFile(buildDiffSums, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readLines(t, buildDiffSums)
	if len(want) != len(lines) {
		t.Errorf("%d recorded inputs, %d generated", len(want), len(lines))
	}
	for _, l := range lines {
		name, sum, _ := strings.Cut(l, " ")
		if w, ok := want[name]; !ok || w != sum {
			t.Errorf("outcome of %s differs from the recorded one (recorded: %v)", name, ok)
		}
	}
}

// routeCheckCases are routes lists that make each check of a route
// report, or fail to load where a check looks at what loaded.
var routeCheckCases = []string{
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none}\n  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a}, auth: none}\n  - {name: B, gateway: nope, match: {pathPrefix: /b}, backend: bb, auth: none}\n",
	"  - {name: a, match: {pathPrefix: a, path: /x}, backend: b, auth: none}\n",
	"  - {name: a, match: {pathPrefix: \"/a\\tb\"}, backend: b, auth: none}\n  - {name: c, match: {path: \"/\\u202e\"}, backend: b, auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a, pathRegex: \"(\"}, backend: b, auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a, hosts: [A.com, \"x:1\", a.com, a.com], methods: [GET, GOT, GET], headers: [{name: \":path\", exact: x}, {name: x}]}, backend: b, auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, timeout: 500us, idleTimeout: -1s, auth: none}\n  - {name: c, match: {pathPrefix: /c}, backend: b, timeout: x, idleTimeout: 0s}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: {methods: [jwt, nope], roles: [], scopes: []}}\n  - {name: c, match: {pathPrefix: /c}, backend: b, auth: {methods: []}}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none, rateLimit: {consumer: true, by: [nope]}}\n  - {name: c, match: {pathPrefix: /c}, backend: b, rateLimit: {extra: [{requests: 0, per: 1m}]}}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none, transform: {}}\n  - {name: c, match: {pathPrefix: /c}, backend: b, auth: none, transform: {request: nope, rootElement: \"1\"}}\n",
	"  - {name: a, match: {pathPrefix: /a}, backends: [{name: b, weight: 1}, {name: nope, weight: 1}], auth: none}\n  - {name: c, match: {pathPrefix: /c}, backend: b, backends: [], auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none, mirror: {backend: nope, percent: 200}, retries: {attempts: 2, perTryTimeout: 10us}}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: [b], auth: none}\n  - {name: c, match: {pathPrefix: /c}, backend: b, mirror: 3, auth: none}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none, accessLog: {sample: 200%}}\n  - {name: c, match: {pathPrefix: /c}, backend: b, auth: [x]}\n",
	"  - {name: a, match: [x], backend: b, auth: none}\n  - {name: c, match: {pathPrefix: 1}, backend: b, rateLimit: [x]}\n  - {name: d, match: {pathPrefix: /d}, transform: 1, backend: b}\n",
	"  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none, rewrite: {pathPrefix: x}, headers: {request: {set: {x-a: b}}}}\n",
	"  - {name: a, match: {pathRegex: /a.*}, backend: b, auth: none, rewrite: {pathPrefix: /x}, redirect: {port: 0}}\n",
	"  - 3\n  - {name: a, match: {pathPrefix: /a}, backend: b, auth: none}\n",
}

// prescanLimits are the default limits and tight ones, each of which
// makes the prescan stop in many inputs at the first scalar (of several
// sizes, so that they stop at different scalars), list, nesting or node
// count over it.
func prescanLimits() []policy.Limits {
	out := []policy.Limits{policy.DefaultLimits()}
	for _, n := range []int{7, 8, 9, 10, 11, 12, 14, 16, 20, 24, 32} {
		lim := policy.DefaultLimits()
		lim.MaxScalarBytes = n
		out = append(out, lim)
	}
	for _, tight := range []func(*policy.Limits){
		func(l *policy.Limits) { l.MaxDepth = 3 },
		func(l *policy.Limits) { l.MaxItems = 4 },
		func(l *policy.Limits) { l.MaxNodes = 60 },
	} {
		lim := policy.DefaultLimits()
		tight(&lim)
		out = append(out, lim)
	}
	return out
}

// buildOutcome is the prescan's outcome under the default and tight
// limits, Load's and Validate's diagnostics, in their order, and
// when they have no error, the IR's JSON and version id; and the IR, nil
// for none.
func buildOutcome(files []policy.File) (string, *ir.Config) {
	var b strings.Builder
	for _, f := range files {
		for _, lim := range prescanLimits() {
			fmt.Fprintf(&b, "prescan %s: %s\n", f.Name, policy.PrescanOutcome(f.Content, lim))
		}
	}
	p, ds := policy.Load(files)
	vs := p.Validate()
	b.WriteString("load:\n")
	writeDiags(&b, ds)
	b.WriteString("validate:\n")
	writeDiags(&b, vs)
	if ds.HasErrors() || vs.HasErrors() {
		return b.String(), nil
	}
	cfg := policy.Compile(p)
	j, err := json.Marshal(cfg)
	if err != nil {
		j = []byte(err.Error())
	}
	fmt.Fprintf(&b, "ir %s:\n%s\n", cfg.Hash(), j)
	return b.String(), cfg
}
