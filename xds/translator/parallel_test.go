package translator

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/racesample"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestValidateSpreadIsValidate checks that validating a route table's
// routes on several goroutines (envoy.ValidateRouteTable), and skipping
// routes known to validate (envoy.ValidateRouteTableKnown, as
// TranslateValidated does), gives exactly the sequential result: nil for a valid table, the same error, word for
// word, for tables broken in a route, in several routes, in a route's
// per-filter Any, or in a virtual host itself. Under the race detector it
// checks a sample of the spread validations (racesample).
func TestValidateSpreadIsValidate(t *testing.T) {
	sample := racesample.New(t)
	route := func(r *Resources, i int) *routev3.Route {
		vhs := r.Routes[0].GetVirtualHosts()
		vh := vhs[i%len(vhs)]
		return vh.GetRoutes()[i/len(vhs)%len(vh.GetRoutes())]
	}
	tests := []struct {
		name   string
		mutate func(r *Resources)
	}{
		{name: "valid", mutate: func(*Resources) {}},
		{name: "a route without a match", mutate: func(r *Resources) { route(r, 1500).Match = nil }},
		{name: "routes without a match in several chunks", mutate: func(r *Resources) {
			for _, i := range []int{7, 1501, 2998} {
				route(r, i).Match = nil
			}
		}},
		{name: "a route's per-filter Any of an unknown type", mutate: func(r *Resources) {
			route(r, 2100).TypedPerFilterConfig = map[string]*anypb.Any{"x": {TypeUrl: "type.googleapis.com/tollgate.NoSuch"}}
		}},
		{name: "a virtual host without domains", mutate: func(r *Resources) { r.Routes[0].VirtualHosts[3].Domains = nil }},
	}
	// The spread validations of each table: worker counts, without and
	// with routes known to validate (every step-th valid route).
	type spreadCase struct {
		known         string
		step, workers int
	}
	spreads := []spreadCase{
		{"none", 0, 2}, {"none", 0, 3}, {"none", 0, 8},
		{"every valid route", 1, 1}, {"every other valid route", 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept := slices.DeleteFunc(slices.Clone(spreads), func(spreadCase) bool { return !sample.Keep() })
			if len(kept) == 0 {
				t.Skipf("no spread validation of this table in the sample (%s)", sample)
			}
			r, err := Translate(benchConfig(3000), "bench", Options{AuthzAddress: "10.255.0.1:9191"})
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(r)
			seq := validate(r, func(int) int { return 1 }, nil)
			for _, k := range kept {
				var known func(*routev3.Route) bool
				if k.step > 0 {
					known = validOnes(r, k.step)
				}
				spread := validate(r, func(int) int { return k.workers }, known)
				if (seq == nil) != (spread == nil) || (seq != nil && seq.Error() != spread.Error()) {
					t.Fatalf("%d workers, known %s: %v\nsequential: %v", k.workers, k.known, spread, seq)
				}
			}
			if (seq == nil) != (tt.name == "valid") {
				t.Fatalf("sequential: %v", seq)
			}
		})
	}
}

// validOnes returns a predicate true for every step-th route of r that
// validates on its own: the routes TranslateValidated may skip.
func validOnes(r *Resources, step int) func(*routev3.Route) bool {
	valid := map[*routev3.Route]bool{}
	v := envoy.NewValidator()
	for i, rt := range allRoutes(r) {
		if i%step == 0 && v.Validate(rt) == nil {
			valid[rt] = true
		}
	}
	return func(rt *routev3.Route) bool { return valid[rt] }
}

// TestTranslateSpreadIsSequential translates every golden case and a
// 3,000-route gateway with the routes built on one goroutine and, several
// times, on several: the resources are byte-identical (deterministic
// protobuf encoding) and validate alike. Under the race detector it checks
// a sample of the spread translations (racesample).
func TestTranslateSpreadIsSequential(t *testing.T) {
	sample := racesample.New(t)
	type input struct {
		cfg     *ir.Config
		gateway string
		opts    Options
	}
	inputs := map[string]input{"bench-3000": {benchConfig(3000), "bench", Options{AuthzAddress: "10.255.0.1:9191"}}}
	for _, name := range caseNames(t) {
		tc := loadCase(t, name)
		inputs[name] = input{&tc.Config, tc.Gateway, tc.options()}
	}
	for _, name := range slices.Sorted(maps.Keys(inputs)) { // sorted: TOLLGATE_RACE_OFFSET repeats a sample
		in := inputs[name]
		t.Run(name, func(t *testing.T) {
			kept := slices.DeleteFunc([]int{2, 3, 7, 2, 3, 7}, func(int) bool { return !sample.Keep() })
			if len(kept) == 0 {
				t.Skipf("no spread translation of this input in the sample (%s)", sample)
			}
			seq := in.opts
			seq.workers = func(int, int) int { return 1 }
			want, wantErr := translateEncoded(t, in.cfg, in.gateway, seq)
			for _, workers := range kept {
				spread := in.opts
				spread.workers = func(int, int) int { return workers }
				got, err := translateEncoded(t, in.cfg, in.gateway, spread)
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("%d workers: error %v, sequential %v", workers, err, wantErr)
				}
				if !slices.EqualFunc(got, want, bytes.Equal) {
					t.Fatalf("%d workers: resources differ from the sequential translation", workers)
				}
			}
		})
	}
}

// translateEncoded translates and validates, and returns every resource's
// deterministic encoding in Resources order, and the error.
func translateEncoded(t *testing.T, cfg *ir.Config, gateway string, opts Options) ([][]byte, error) {
	t.Helper()
	r, err := Translate(cfg, gateway, opts)
	if err != nil {
		return nil, err
	}
	return encodeResources(t, r), validate(r, func(int) int { return opts.workers(0, 0) }, nil)
}
