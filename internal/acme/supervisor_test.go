package acme

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

type nopInstaller struct{}

func (nopInstaller) Set(string, []byte, []byte) error { return nil }

// acmeConfig returns an IR with one gateway whose listeners have ACME for
// the given secrets (domains derived from the names).
func acmeConfig(domain string, secrets ...string) *ir.Config {
	gw := ir.Gateway{Name: "gw"}
	for _, s := range secrets {
		gw.Listeners = append(gw.Listeners, ir.Listener{Name: s, TLS: &ir.ListenerTLS{ACME: &ir.ACME{
			Secret: s, Domains: []string{s + "." + domain}, Directory: "https://127.0.0.1:1/dir", RenewBefore: time.Hour,
		}}})
	}
	return &ir.Config{Gateways: []ir.Gateway{gw}}
}

func TestSupervisorFollowsSwapsAndRestores(t *testing.T) {
	st, err := OpenStorage(filepath.Join(t.TempDir(), "acme"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSupervisor(context.Background(), SupervisorOptions{Storage: st, Responder: NewResponder(), Installer: nopInstaller{},
		RetryMin: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer s.Close()
	running := func() []string { r := s.Running(); slices.Sort(r); return r }

	if _, err := s.Swap(acmeConfig("example.com", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if got := running(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("running %v, want a b", got)
	}
	restore, err := s.Swap(acmeConfig("example.com", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if got := running(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after a swap running %v, want b c", got)
	}
	restore()
	if got := running(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after restore running %v, want a b", got)
	}
	if _, err := s.Swap(acmeConfig("example.org", "a")); err != nil { // changed domains: a new Manager
		t.Fatal(err)
	}
	if got := running(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("running %v, want a", got)
	}
	if _, err := s.Swap(&ir.Config{}); err != nil {
		t.Fatal(err)
	}
	if got := running(); len(got) != 0 {
		t.Fatalf("running %v after a policy without ACME", got)
	}
}

type failingSource struct{}

func (failingSource) PEM(ir.Secret) ([]byte, []byte, error) { return nil, nil, io.ErrUnexpectedEOF }

func TestPendingSource(t *testing.T) {
	p := &PendingSource{Next: failingSource{}}
	acmeSecret := ir.Secret{Name: "tls/gw/https/acme", Kind: ir.SecretCertificate}
	cert, key, err := p.PEM(acmeSecret)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("placeholder is not a usable pair: %v", err)
	}
	if pair.Leaf == nil || pair.Leaf.DNSNames[0] != PlaceholderName {
		t.Fatalf("placeholder names %v", pair.Leaf)
	}
	again, _, _ := p.PEM(acmeSecret)
	if string(again) != string(cert) {
		t.Error("the placeholder changed between translations (Envoy would see a new secret each push)")
	}
	for _, s := range []ir.Secret{
		{Name: "file", Kind: ir.SecretCertificate, Cert: ir.PEMSource{File: "x.crt"}, Key: ir.PEMSource{File: "x.key"}},
		{Name: "ca", Kind: ir.SecretCA},
	} {
		if _, _, err := p.PEM(s); err == nil {
			t.Errorf("secret %s: the source's error was replaced by a placeholder", s.Name)
		}
	}
}

func TestPendingSourceServesTheStoredCertificateAfterARestart(t *testing.T) {
	st, err := OpenStorage(filepath.Join(t.TempDir(), "acme"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := selfSigned("api.example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	const dir, secret = "https://ca.test/dir", "tls/gw/https/acme"
	if err := st.saveCertificate(dir, c.Domains, c); err != nil {
		t.Fatal(err)
	}
	if err := st.recordSecret(secret, dir, c.Domains); err != nil {
		t.Fatal(err)
	}
	// A new process: fresh Storage and source on the same directory.
	st2, _ := OpenStorage(st.Dir())
	p := &PendingSource{Next: failingSource{}, Storage: st2}
	got, key, err := p.PEM(ir.Secret{Name: secret, Kind: ir.SecretCertificate})
	if err != nil || string(got) != string(certPEM) || string(key) != string(keyPEM) {
		t.Fatalf("PEM = %v; want the stored certificate, not a placeholder", err)
	}
	other, _, err := p.PEM(ir.Secret{Name: "tls/gw/other/acme", Kind: ir.SecretCertificate})
	if err != nil || string(other) == string(certPEM) {
		t.Fatalf("an unrecorded secret got %v / the stored certificate", err)
	}
}
