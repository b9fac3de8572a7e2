package controlplane

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestCompileIsDeterministic compiles a policy large enough for every
// parallel stage (load, validate, compile, translate, PGV validation; the
// IR hash concurrently with the translation) several times: the version id
// and every resource's deterministic encoding are the same each time. The
// packages' own tests compare the parallel stages with the sequential ones
// (TestLoadSpreadIsSequential, TestValidateSpreadIsSequential,
// TestCompileSpreadIsSequential, TestTranslateSpreadIsSequential,
// TestValidateSpreadIsValidate).
func TestCompileIsDeterministic(t *testing.T) {
	c := newTestController(t, t.TempDir(), &fakeApplier{})
	files := manyRoutes(3000, 0)
	var wantID string
	var want [][]byte
	for i := range 4 {
		cp, err := c.compile(files)
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for _, g := range slices.Sorted(maps.Keys(cp.resources)) {
			byType := cp.resources[g].ByType()
			for _, typ := range slices.Sorted(maps.Keys(byType)) {
				for _, r := range byType[typ] {
					b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, b)
				}
			}
		}
		if i == 0 {
			wantID, want = cp.version.ID, got
			continue
		}
		if cp.version.ID != wantID || !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("compile %d: version %s, %d resources; first compile: %s, %d", i, cp.version.ID, len(got), wantID, len(want))
		}
	}
}
