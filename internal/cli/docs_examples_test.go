package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/docexamples"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// docBlocks returns every YAML block of README.md and docs/**/*.md.
func docBlocks(t *testing.T) []docexamples.Block {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	files, err := docexamples.Markdown(root)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docexamples.Block
	for _, f := range files {
		bs, err := docexamples.Extract(root, f)
		if err != nil {
			t.Error(err)
			continue
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) < 10 {
		t.Fatalf("found only %d YAML blocks in the documentation", len(blocks))
	}
	return blocks
}

// TestDocsYAMLExamples runs the real validation (`tollgate validate`'s code
// path) on every YAML block of the documentation: complete policies as they
// are, fragments wrapped into a minimal policy (docexamples.Wrap), other
// YAML parsed only. Valid policies then go through `validate --with-envoy`
// (the real Envoy in validate mode) when an Envoy binary is found. Files the
// examples name (certificates, keys, CA bundles, relative paths) are
// generated in a temporary working directory.
func TestDocsYAMLExamples(t *testing.T) {
	blocks := docBlocks(t)
	bin, err := envoy.FindBinary()
	if err != nil && !errors.Is(err, envoy.ErrBinaryNotFound) {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	for _, b := range blocks {
		t.Run(b.Name(), func(t *testing.T) {
			if b.Kind == docexamples.NotAPolicy {
				checkPlainYAML(t, b)
				return
			}
			writeReferencedFiles(t, b.Content)
			files := []policy.File{{Name: b.Name() + ".yaml", Content: []byte(b.Content)}}
			if b.Kind == docexamples.Fragment {
				if files, err = docexamples.Wrap(b); err != nil {
					t.Fatal(err)
				}
			}
			res, cfg := validateFiles(t, files)
			if !res.Valid {
				t.Fatalf("%s is rejected by validation:\n%s", b.Name(), diagText(res.Diagnostics))
			}
			if bin == "" {
				t.Log("no Envoy binary: --with-envoy skipped")
				return
			}
			checks, err := validateWithEnvoy(context.Background(), cfg, bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if !c.OK {
					t.Errorf("%s: gateway %s rejected by Envoy: %s", b.Name(), c.Gateway, c.Error)
				}
			}
		})
	}
}

// validateFiles writes files into a directory and runs validatePath on it.
func validateFiles(t *testing.T, files []policy.File) (*validateResult, *ir.Config) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policy")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		name := filepath.Join(dir, string(rune('a'+i))+".yaml")
		if err := os.WriteFile(name, f.Content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, cfg, err := validatePath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return res, cfg
}

func diagText(ds policy.Diagnostics) string {
	var b strings.Builder
	printDiagnostics(&b, ds)
	return b.String()
}

// checkPlainYAML parses a not-a-policy block, every document of it.
func checkPlainYAML(t *testing.T, b docexamples.Block) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(b.Content))
	for {
		var v any
		err := dec.Decode(&v)
		if err != nil {
			if strings.Contains(err.Error(), "EOF") {
				return
			}
			t.Fatalf("%s is not valid YAML: %v", b.Name(), err)
		}
	}
}

var referencedFile = regexp.MustCompile(`[A-Za-z0-9_./-]+\.(crt|key|pem)\b`)

// writeReferencedFiles writes, under the working directory, a certificate
// to every relative *.crt and *.pem path the example names and its key to
// every *.key path: one self-signed CA certificate and key, so every pair
// matches and every CA bundle verifies.
func writeReferencedFiles(t *testing.T, content string) {
	t.Helper()
	certPEM, keyPEM := testCertificate(t)
	for _, p := range referencedFile.FindAllString(content, -1) {
		if filepath.IsAbs(p) {
			t.Fatalf("the example names the absolute path %s: use a relative path (relative to the control plane's working directory), so the docs test can provide it", p)
		}
		data := certPEM
		if strings.HasSuffix(p, ".key") {
			data = keyPEM
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// testCertificate returns a self-signed ECDSA CA certificate valid for a
// year for the names the examples use, and its PKCS#8 key, as PEM.
func testCertificate(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "docs example"},
		DNSNames:              []string{"api.example.com", "www.example.com", "ledger.internal", "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}
