package controlplane

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/policy"
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

// TestPushesReuseTheParse pushes a policy one route longer each time,
// while dry runs of other policies compile concurrently through the same
// parse cache (DryRun takes no lock): every version is the uncached
// build's, and the cache holds the parts of a compiled policy after.
func TestPushesReuseTheParse(t *testing.T) {
	c := newTestController(t, t.TempDir(), &fakeApplier{})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for k := range 5 {
			if _, err := c.DryRun(manyRoutes(600, 10-k)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for k := range 5 {
		files := manyRoutes(600, k)
		res, err := c.Push(ctx, files, "push", "test")
		if err != nil {
			t.Fatal(err)
		}
		cfg, ds := policy.Build([]policy.File{{Name: files[0].Name, Content: []byte(files[0].Content)}})
		if ds.HasErrors() || res.Version != cfg.Hash() {
			t.Fatalf("push %d: version %s, uncached build %s (%v)", k, res.Version, cfg.Hash(), ds.Err())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if parts, _, _ := c.parse.Size(); parts < 2 {
		t.Fatalf("the parse cache holds %d parts after the pushes", parts)
	}
}
