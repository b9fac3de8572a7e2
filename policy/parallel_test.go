package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// manyMistakes returns a policy of n routes of which most are wrong in
// one or more ways Validate reports (unknown backends and gateways, bad
// paths, methods and hosts, duplicate names and matches, bad timeouts and
// auth), spread over the whole list.
func manyMistakes(n int) []File {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n  - {name: gw, listeners: [{name: http, port: 8080}]}\n")
	b.WriteString("  - {name: gw2, listeners: [{name: http, port: 8081}]}\nroutes:\n")
	for i := range n {
		name, backend, path, extra := fmt.Sprintf("r%d", i), "b", fmt.Sprintf("/p%d", i), ""
		switch i % 11 {
		case 1:
			backend = "nope"
		case 2:
			path = fmt.Sprintf("p%d", i)
		case 3:
			name = fmt.Sprintf("r%d", i-1)
		case 4:
			path = fmt.Sprintf("/p%d", i-1)
		case 5:
			extra = ", methods: [GETT, GET, get]"
		case 6:
			extra = ", hosts: [Bad.Example, '*']"
		case 7:
			extra = "}, timeout: -3s, gateway: gw3, auth: {methods: [nope]"
		case 8:
			name = "Bad_Name"
		}
		fmt.Fprintf(&b, "  - {name: %s, backend: %s, match: {pathPrefix: %q%s}}\n", name, backend, path, extra)
	}
	b.WriteString("backends:\n  - {name: b, endpoints: [\"10.0.0.1:80\"]}\n  - {name: unused, endpoints: [\"10.0.0.2:80\"]}\n")
	return []File{{Name: "mistakes.yaml", Content: []byte(b.String())}}
}

// shapeMistakes returns a policy of n routes of which most Load refuses in
// part: unknown fields, values of the wrong type, missing and empty
// values, a route that is not a mapping, tags and unknown aliases.
func shapeMistakes(n int) []File {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n  - {name: gw, listeners: [{name: http, port: 8080}]}\nroutes:\n")
	for i := range n {
		switch i % 9 {
		case 1:
			fmt.Fprintf(&b, "  - {nme: r%d, backend: b}\n", i)
		case 2:
			fmt.Fprintf(&b, "  - {name: %d, backend: b}\n", i)
		case 3:
			fmt.Fprintf(&b, "  - {name: r%d, backend: b, match: [x]}\n", i)
		case 4:
			fmt.Fprintf(&b, "  - {name: r%d, backend: b, timeout: }\n", i)
		case 5:
			fmt.Fprintf(&b, "  - r%d\n", i)
		case 6:
			fmt.Fprintf(&b, "  - {name: r%d, backend: !!str b, match: {pathPrefix: \"\"}}\n", i)
		case 7:
			fmt.Fprintf(&b, "  - {name: r%d, backend: *nope, match: {methods: GET}}\n", i)
		default:
			fmt.Fprintf(&b, "  - {name: r%d, backend: b, match: {pathPrefix: /p%d}}\n", i, i)
		}
	}
	b.WriteString("backends:\n  - {name: b, endpoints: [\"10.0.0.1:80\"]}\n")
	return []File{{Name: "shape.yaml", Content: []byte(b.String())}}
}

// parallelInputs are the policies the parallel checks are compared on:
// the valid and invalid fixtures, a large valid policy over three files and
// a large policy with mistakes in most routes.
func parallelInputs(t *testing.T) map[string][]File {
	t.Helper()
	in := map[string][]File{
		"routes-3000": genFiles(3000, 3), "mistakes-2000": manyMistakes(2000), "shape-2000": shapeMistakes(2000),
		"shape-and-mistakes": append(shapeMistakes(1500), manyMistakes(1500)...),
	}
	paths, _ := filepath.Glob("testdata/*.yaml")
	invalid, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, p := range append(paths, invalid...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		in[p] = []File{{Name: filepath.Base(p), Content: b}}
	}
	return in
}

// spreadWorkers returns the worker counts the spread tests compare with
// one worker, each twice ("again and again"); under the race detector
// (RaceSample) 2 and 8 once each.
func spreadWorkers() []int {
	if raceDetector {
		return []int{2, 8}
	}
	return []int{2, 3, 8, 2, 3, 8}
}

// TestValidateSpreadIsSequential checks that Validate gives the very same
// diagnostics, in the same order, whether the routes are checked on one
// goroutine or on several (forced, whatever the route count), again and
// again; and that the policy with many mistakes has many.
func TestValidateSpreadIsSequential(t *testing.T) {
	for name, files := range parallelInputs(t) {
		t.Run(name, func(t *testing.T) {
			p, _ := Load(files)
			want := p.validate(func(int, int) int { return 1 })
			if name == "mistakes-2000" && len(want.Errors()) < 1000 {
				t.Fatalf("%d errors, want over 1,000", len(want.Errors()))
			}
			for _, workers := range spreadWorkers() {
				got := p.validate(func(int, int) int { return workers })
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%d workers: %d diagnostics differ from the sequential %d", workers, len(got), len(want))
				}
			}
		})
	}
}

// TestCompileSpreadIsSequential checks that Compile gives the very same IR
// and version (ir.Config.Hash) whether the routes are compiled on one
// goroutine or on several, again and again, for every valid input.
func TestCompileSpreadIsSequential(t *testing.T) {
	for name, files := range parallelInputs(t) {
		p, ds := Load(files)
		if ds = append(ds, p.Validate()...); ds.HasErrors() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			want := compile(p, func(int, int) int { return 1 })
			for _, workers := range spreadWorkers() {
				got := compile(p, func(int, int) int { return workers })
				if !reflect.DeepEqual(got, want) || got.Hash() != want.Hash() {
					t.Fatalf("%d workers: IR %s differs from the sequential %s", workers, got.Hash(), want.Hash())
				}
			}
		})
	}
}

// TestLoadSpreadIsSequential checks that Load gives the very same Policy
// (positions, failed paths and partial included) and diagnostics, in the
// same order, whether long routes lists are loaded on one goroutine or on
// several, again and again; and that Validate then reports the same.
func TestLoadSpreadIsSequential(t *testing.T) {
	one := func(int, int) int { return 1 }
	for name, files := range parallelInputs(t) {
		t.Run(name, func(t *testing.T) {
			for _, workers := range spreadWorkers() {
				spread := func(int, int) int { return workers }
				want, wantDs := loadSpread(files, DefaultLimits(), one, nil)
				got, ds := loadSpread(files, DefaultLimits(), spread, nil)
				if !reflect.DeepEqual(got, want) { // before Validate builds the position index
					t.Fatalf("%d workers: the Policy differs from the sequential load's", workers)
				}
				wantDs = append(wantDs, want.validate(one)...)
				if strings.HasPrefix(name, "shape") && len(wantDs.Errors()) < 1000 {
					t.Fatalf("%d errors, want over 1,000", len(wantDs.Errors()))
				}
				if ds = append(ds, got.validate(spread)...); !reflect.DeepEqual(ds, wantDs) {
					t.Fatalf("%d workers: %d diagnostics differ from the sequential %d", workers, len(ds), len(wantDs))
				}
			}
		})
	}
}
