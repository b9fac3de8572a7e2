package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/internal/certs"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// lockedApplier is a fakeApplier safe for WatchCertificates' goroutine.
type lockedApplier struct {
	mu sync.Mutex
	fakeApplier
}

func (l *lockedApplier) Apply(ctx context.Context, d map[string]*translator.Resources) ([]xds.GatewayResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fakeApplier.Apply(ctx, d)
}

func (l *lockedApplier) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.applied)
}

func (l *lockedApplier) last() map[string]*translator.Resources {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied[len(l.applied)-1]
}

func selfSignedPair(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

func TestCertificateRotationAppliesSecretsOnly(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	c1, k1 := selfSignedPair(t, "api.example.com")
	writeAll(t, map[string][]byte{certFile: c1, keyFile: k1})
	f := &lockedApplier{}
	st := certs.NewStore(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ds, err := store.OpenDir(filepath.Join(dir, "store"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), ds, f, Options{Translate: translator.Options{Certs: st}})
	policy := fmt.Sprintf("version: 1\ngateways:\n  - name: public\n    listeners: [{name: https, port: 8443, tls: {certificates: [{name: api, cert: %q, key: %q}]}}]\n"+
		"routes: [{name: r, backend: b, auth: none}]\nbackends: [{name: b, endpoints: [\"127.0.0.1:9001\"]}]\n", certFile, keyFile)
	if _, err := c.Push(context.Background(), []store.File{{Name: "p.yaml", Content: policy}}, "push", "test"); err != nil {
		t.Fatal(err)
	}
	first := f.last()["public"]
	if err := c.RefreshSecrets(context.Background()); err != nil || f.count() != 1 {
		t.Fatalf("refresh without a change: err %v, applies %d (want 1)", err, f.count())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.WatchCertificates(ctx, st, 10*time.Millisecond)
	c2, k2 := selfSignedPair(t, "api.example.com")
	writeAll(t, map[string][]byte{keyFile: k2, certFile: c2})
	waitFor(t, func() bool { return f.count() >= 2 })
	got := f.last()["public"]
	if !proto.Equal(got.Listeners[0], first.Listeners[0]) || !proto.Equal(got.Clusters[0], first.Clusters[0]) {
		t.Error("a rotation changed a listener or cluster")
	}
	if string(got.Secrets[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes()) != string(c2) {
		t.Error("the rotated certificate was not applied")
	}
	// A run-time source (ACME) overrides the file by secret name.
	c3, k3 := selfSignedPair(t, "api.example.com")
	if err := st.Set(ir.ListenerCertSecretName("public", "https", "api"), c3, k3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.count() >= 3 })
	if string(f.last()["public"].Secrets[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes()) != string(c3) {
		t.Error("the run-time certificate was not applied")
	}
}

func writeAll(t *testing.T, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A certificate rotation re-serves the policy with the stored endpoint
// overrides: Envoy keeps the override `tollgate endpoints get` reports.
func TestCertificateRotationKeepsEndpointOverrides(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	c1, k1 := selfSignedPair(t, "api.example.com")
	writeAll(t, map[string][]byte{certFile: c1, keyFile: k1})
	f := &lockedApplier{}
	st := certs.NewStore(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ds, err := store.OpenDir(filepath.Join(dir, "store"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), ds, f, Options{Translate: translator.Options{Certs: st}})
	policy := fmt.Sprintf("version: 1\ngateways:\n  - name: public\n    listeners: [{name: https, port: 8443, tls: {certificates: [{name: api, cert: %q, key: %q}]}}]\n"+
		"routes: [{name: r, backend: b, auth: none}]\nbackends: [{name: b, endpoints: [\"127.0.0.1:9001\"]}]\n", certFile, keyFile)
	ctx := context.Background()
	if _, err := c.Push(ctx, []store.File{{Name: "p.yaml", Content: policy}}, "push", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetEndpoints(ctx, "b", []string{"127.0.0.1:7001"}, "t"); err != nil {
		t.Fatal(err)
	}
	before := f.last()["public"]
	c2, k2 := selfSignedPair(t, "api.example.com")
	writeAll(t, map[string][]byte{certFile: c2, keyFile: k2})
	if !st.Poll() {
		t.Fatal("Poll did not notice the new certificate")
	}
	if err := c.RefreshSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.last()["public"]
	if after == before {
		t.Fatal("RefreshSecrets applied nothing after the certificate changed")
	}
	if len(after.Endpoints) != 1 || !strings.Contains(after.Endpoints[0].String(), "7001") {
		t.Errorf("after a certificate rotation Envoy gets endpoints %v, want the override 127.0.0.1:7001", after.Endpoints)
	}
	if v, err := c.Endpoints("b"); err != nil || !v.Overridden || v.Endpoints[0] != "127.0.0.1:7001" {
		t.Errorf("endpoints get after the rotation = %+v, %v; want the override", v, err)
	}
}
