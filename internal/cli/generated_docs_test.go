package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/docexamples"
	"github.com/tollgate/tollgate/policy"
)

// regenerate is the command that rewrites every generated file.
const regenerate = "go run ./cmd/tollgate docs ."

// TestGeneratedDocsUpToDate regenerates policy.schema.json, the policy
// reference (docs/reference/policy) and the CLI reference and man pages
// (docs/reference/cli, docs/reference/man) into a temporary directory and
// fails when the committed files differ, are missing or are stale.
func TestGeneratedDocsUpToDate(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "TOLLGATE_") {
			t.Setenv(name, "") // restored after the test; docsRoot unsets it
		}
	}
	gen := t.TempDir()
	if err := os.MkdirAll(filepath.Join(gen, "docs", "reference"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeGeneratedDocs(gen); err != nil {
		t.Fatal(err)
	}
	for _, rel := range generatedFiles(t, gen) {
		want, err := os.ReadFile(filepath.Join(gen, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not up to date (%v): run `%s`", rel, err, regenerate)
		}
	}
	committed := generatedFiles(t, repoRoot)
	fresh := map[string]bool{}
	for _, rel := range generatedFiles(t, gen) {
		fresh[rel] = true
	}
	for _, rel := range committed {
		if !fresh[rel] {
			t.Errorf("%s is no longer generated: run `%s`", rel, regenerate)
		}
	}
}

// generatedFiles lists the generated files under root, relative to it.
func generatedFiles(t *testing.T, root string) []string {
	t.Helper()
	out := []string{"policy.schema.json"}
	for _, d := range []string{"policy", "cli", "man"} {
		entries, err := os.ReadDir(filepath.Join(root, "docs", "reference", d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, filepath.ToSlash(filepath.Join("docs", "reference", d, e.Name())))
		}
	}
	sort.Strings(out)
	return out
}

// policySchema compiles the committed policy.schema.json.
func policySchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "policy.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(policy.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(policy.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlInstance decodes one YAML document as the JSON value an editor's
// schema check sees. It uses a YAML 1.2 decoder (go.yaml.in/yaml/v3), as
// editors do, not the loader's goccy/go-yaml, which reads a flow entry
// such as [orders:read] as a mapping.
func yamlInstance(t *testing.T, content []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(content, &v); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAcceptsValidPolicies checks the JSON Schema against every
// policy the validator accepts: the policy/testdata fixtures, the embedded
// dev policy, the deployment policies and every policy example of the
// documentation (fragments with `version: 1` added).
func TestSchemaAcceptsValidPolicies(t *testing.T) {
	s := policySchema(t)
	files, err := filepath.Glob(filepath.Join(repoRoot, "policy/testdata/valid*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(repoRoot, "policy/testdata/dir/*.y*ml"))
	files = append(files, more...)
	files = append(files, filepath.Join(repoRoot, "deploy/compose/policy.yaml"),
		filepath.Join(repoRoot, "deploy/kubernetes/base/tollgate/policy.yaml"), filepath.Join(repoRoot, "deploy/kubernetes/overlays/production/policy.yaml"), filepath.Join(repoRoot, "docs/dashboard/policy.yaml"))
	cases := map[string][]byte{"internal/cli/devpolicy.yaml": devPolicy}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[f] = b
	}
	for _, b := range docBlocks(t) {
		switch b.Kind {
		case docexamples.Policy:
			cases[b.Name()] = []byte(b.Content)
		case docexamples.Fragment:
			cases[b.Name()] = []byte("version: 1\n" + b.Content)
		}
	}
	for name, content := range cases {
		if err := s.Validate(yamlInstance(t, content)); err != nil {
			t.Errorf("%s: the schema rejects a valid policy: %v", name, err)
		}
	}
}

// TestSchemaRejectsShapeErrors checks that the schema refuses what the
// loader refuses for its shape: unknown keys, wrong types, missing
// required fields, words other than the allowed ones. Each case is also
// refused by policy.Load, so the two agree.
func TestSchemaRejectsShapeErrors(t *testing.T) {
	s := policySchema(t)
	const base = "version: 1\ngateways: [{name: public, listeners: [{name: http, port: 8080}]}]\n"
	tests := []struct{ name, yaml string }{
		{"unknown top-level key", base + "extra: true\n"},
		{"misspelt field", "version: 1\ngateways: [{name: public, listeners: [{name: http, port: 8080, adress: 0.0.0.0}]}]\n"},
		{"port as a string", "version: 1\ngateways: [{name: public, listeners: [{name: http, port: \"8080\"}]}]\n"},
		{"hosts not a list", base + "routes: [{name: r, backend: b, auth: none, match: {hosts: api.example.com}}]\n"},
		{"present not a boolean", base + "routes: [{name: r, backend: b, auth: none, match: {headers: [{name: x-a, present: \"yes\"}]}}]\n"},
		{"missing version", "gateways: [{name: public, listeners: [{name: http, port: 8080}]}]\n"},
		{"missing listeners", "version: 1\ngateways: [{name: public}]\n"},
		{"auth word", base + "routes: [{name: r, backend: b, auth: public}]\n"},
		{"rateLimit word", base + "routes: [{name: r, backend: b, auth: none, rateLimit: off}]\n"},
		{"tier word", base + "rateLimits: {tiers: {gold: infinite}, defaultTier: gold}\n"},
		{"timeout as a number", base + "routes: [{name: r, backend: b, auth: none, timeout: 5}]\n"},
		{"empty string", base + "backends: [{name: b, endpoints: [\"\"]}]\n"},
		{"limit without per", base + "rateLimits: {anonymous: [{requests: 5}]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ds := policy.Load([]policy.File{{Name: "p.yaml", Content: []byte(tt.yaml)}}); len(ds.Errors()) == 0 {
				t.Fatalf("policy.Load accepts it; the case is not a shape error:\n%s", tt.yaml)
			}
			if err := s.Validate(yamlInstance(t, []byte(tt.yaml))); err == nil {
				t.Errorf("the schema accepts:\n%s", tt.yaml)
			}
		})
	}
	shape, err := os.ReadFile(filepath.Join(repoRoot, "policy/testdata/invalid/shape.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if yaml.Unmarshal(shape, &v) == nil { // duplicate keys may make it unreadable as plain YAML
		if err := s.Validate(yamlInstance(t, shape)); err == nil {
			t.Error("the schema accepts policy/testdata/invalid/shape.yaml")
		}
	}
}
