package translator

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/out")

// testCase is one testdata/in/<case>.json file.
type testCase struct {
	Gateway string `json:"gateway"`
	// AuthzAddress is Options.AuthzAddress; cases whose gateway needs
	// authz set it.
	AuthzAddress string `json:"authzAddress,omitempty"`
	// RateLimitAddress is Options.RateLimitAddress; cases whose gateway
	// needs rate limiting set it.
	RateLimitAddress string `json:"rateLimitAddress,omitempty"`
	// ExtProcAddress is Options.ExtProcAddress; cases with a transform set it.
	ExtProcAddress string `json:"extProcAddress,omitempty"`
	// ACMEAddress is Options.ACMEAddress; cases with ACME listeners set
	// it (see acme_test.go for their certificates).
	ACMEAddress string `json:"acmeAddress,omitempty"`
	// KeyJWKS is Options.KeyJWKS (the native API-key path).
	KeyJWKS string `json:"keyJWKS,omitempty"`
	// EnvoyModule is Options.EnvoyModule (the module path of native JWT
	// routes).
	EnvoyModule string    `json:"envoyModule,omitempty"`
	Config      ir.Config `json:"config"`
}

// options returns the translation options of the case.
func (tc testCase) options() Options {
	return Options{AuthzAddress: tc.AuthzAddress, RateLimitAddress: tc.RateLimitAddress, Certs: tc.certs(),
		ExtProcAddress: tc.ExtProcAddress, ACMEAddress: tc.ACMEAddress, KeyJWKS: tc.KeyJWKS,
		EnvoyModule: tc.EnvoyModule}
}

// loadCase reads testdata/in/<name>.json.
func loadCase(t testing.TB, name string) testCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "in", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var tc testCase
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tc); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return tc
}

// caseNames returns the names of the testdata/in cases.
func caseNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "in", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return names
}

// translateCase translates and validates a test case.
func translateCase(t testing.TB, name string) *Resources {
	t.Helper()
	tc := loadCase(t, name)
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	if err := Validate(r); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

// renderList renders resources as an indented JSON array of protojson.
func renderList[T proto.Message](t *testing.T, resources []T) []byte {
	t.Helper()
	raw := make([]json.RawMessage, len(resources))
	for i, r := range resources {
		b, err := envoy.JSON(r)
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func TestTranslateGolden(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			r := translateCase(t, name)
			rendered := map[string][]byte{
				"listeners": renderList(t, r.Listeners),
				"routes":    renderList(t, r.Routes),
				"clusters":  renderList(t, r.Clusters),
				"endpoints": renderList(t, r.Endpoints),
			}
			var exts []*corev3.TypedExtensionConfig
			if r.JWTAuthn != nil { // the ECDS resource at JWKS epoch 1
				exts = append(exts, sampleJWTAuthnExtension(t, r.JWTAuthn))
			}
			if r.KeyIdentity != nil { // the ECDS resource with a sample table
				exts = append(exts, sampleKeyExtension(t, r.KeyIdentity))
			}
			if len(exts) > 0 {
				rendered["extensions"] = renderList(t, exts)
			}
			if len(r.Secrets) > 0 { // test-only keys (testdata/in/tls-test-only)
				rendered["secrets"] = renderList(t, r.Secrets)
			}
			for typ, got := range rendered {
				compareGolden(t, filepath.Join("testdata", "out", name+"."+typ+".json"), got)
			}
		})
	}
}

// compareGolden compares got with the golden file, or rewrites it with -update.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the translation (run go test -update to accept):\n%s", path, firstDiff(want, got))
	}
}

// firstDiff describes the first differing line of want and got.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, wl, gl)
		}
	}
	return "no line differs"
}
