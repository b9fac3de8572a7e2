package deploy_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestKubernetesNoOrphanFiles: every YAML file under deploy/kubernetes is a
// kustomization or is referenced by one (resources, components, patches,
// generator files), so a manifest left out of a kustomization cannot go
// unnoticed (kustomize ignores files it is not told about).
func TestKubernetesNoOrphanFiles(t *testing.T) {
	root := filepath.Join(repoRoot, "deploy/kubernetes")
	used := map[string]bool{}
	var all []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		if d.Name() != "kustomization.yaml" {
			all = append(all, path)
			return nil
		}
		for _, ref := range kustomizationRefs(t, path) {
			used[filepath.Join(filepath.Dir(path), ref)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if !used[f] {
			t.Errorf("%s is in no kustomization", f)
		}
	}
}

// kustomizationRefs returns the file paths a kustomization names.
func kustomizationRefs(t *testing.T, path string) []string {
	t.Helper()
	rel, _ := filepath.Rel(repoRoot, path)
	var k struct {
		Resources  []string `yaml:"resources"`
		Components []string `yaml:"components"`
		Patches    []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
		ConfigMapGenerator []struct {
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(readFile(t, rel), &k); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	refs := append(k.Resources, k.Components...)
	for _, p := range k.Patches {
		refs = append(refs, p.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			_, file, ok := strings.Cut(f, "=")
			if !ok {
				file = f
			}
			refs = append(refs, file)
		}
	}
	return refs
}
