package policy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/internal/docexamples"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestHashIsMarshalSumOnPolicies compares the version id (ir.Config.Hash,
// which encodes routes itself) with its definition, the SHA-256 of
// json.Marshal's encoding, on the IR of every YAML block of the
// documentation as it is now that compiles, and of the benchmarks'
// generated policy. TestBuildDifferential does the same on its inputs
// (the fixtures, fuzz corpora, recorded docs blocks and their variants).
func TestHashIsMarshalSumOnPolicies(t *testing.T) {
	inputs := append(docPolicies(t), []policy.File{{Name: "gen.yaml", Content: policy.GenPolicy(300)}})
	compiled := 0
	for _, files := range inputs {
		cfg, ds := policy.Build(files)
		if ds.HasErrors() {
			continue
		}
		compiled++
		checkHashIsMarshalSum(t, files[0].Name, cfg)
	}
	if compiled < 15 {
		t.Fatalf("only %d of %d inputs compiled: is the input set right?", compiled, len(inputs))
	}
}

// checkHashIsMarshalSum checks that cfg.Hash() is the first six bytes of
// the SHA-256 of json.Marshal(cfg), in hex.
func checkHashIsMarshalSum(t *testing.T, name string, cfg *ir.Config) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got, want := cfg.Hash(), hex.EncodeToString(sum[:6]); got != want {
		t.Errorf("%s: Hash() = %s, want %s (sha256 of json.Marshal)", name, got, want)
	}
}

// docPolicies returns every YAML block of README.md and docs/**/*.md that
// is a policy or a fragment of one (wrapped as the docs test wraps it).
func docPolicies(t *testing.T) [][]policy.File {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mds, err := docexamples.Markdown(root)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]policy.File
	for _, md := range mds {
		blocks, err := docexamples.Extract(root, md)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			switch b.Kind {
			case docexamples.NotAPolicy:
			case docexamples.Fragment:
				if files, err := docexamples.Wrap(b); err == nil {
					out = append(out, files)
				}
			default:
				out = append(out, []policy.File{{Name: b.Name(), Content: []byte(b.Content)}})
			}
		}
	}
	return out
}
