package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// selfSigned returns a self-signed certificate and its key, valid for d.
func selfSigned(t *testing.T, cn string, d time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStoreFilesPollAndLastGood(t *testing.T) {
	var logs bytes.Buffer
	st := NewStore(slog.New(slog.NewTextHandler(&logs, nil)))
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, k1 := selfSigned(t, "one", time.Hour)
	write(t, cf, c1)
	write(t, kf, k1)
	sec := ir.Secret{Name: "tls/g/l/c", Kind: ir.SecretCertificate, Cert: ir.PEMSource{File: cf}, Key: ir.PEMSource{File: kf}}
	if c, k, err := st.PEM(sec); err != nil || !bytes.Equal(c, c1) || !bytes.Equal(k, k1) {
		t.Fatalf("PEM = %v", err)
	}
	if st.Poll() {
		t.Error("Poll reports a change of unchanged files")
	}
	// A new certificate without its key: the pair is refused, the last good one served.
	c2, k2 := selfSigned(t, "two", time.Hour)
	write(t, cf, c2)
	if !st.Poll() {
		t.Fatal("Poll missed a changed file")
	}
	select {
	case <-st.Changed():
	default:
		t.Error("Poll did not signal Changed")
	}
	if c, _, err := st.PEM(sec); err != nil || !bytes.Equal(c, c1) {
		t.Errorf("half-rotated pair: err %v, served the new certificate: %v", err, !bytes.Equal(c, c1))
	}
	write(t, kf, k2)
	if c, _, err := st.PEM(sec); err != nil || !bytes.Equal(c, c2) {
		t.Errorf("rotated pair not served: %v", err)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "CERTIFICATE-----") {
		t.Error("the store logged PEM")
	}
}

func TestStoreSetOverridesAndValidates(t *testing.T) {
	st := NewStore(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ca, _ := selfSigned(t, "ca", time.Hour)
	sec := ir.Secret{Name: "tls/g/l/acme", Kind: ir.SecretCertificate, Cert: ir.PEMSource{Inline: string(ca)}}
	if _, _, err := st.PEM(sec); err == nil {
		t.Error("a certificate secret without a key was served")
	}
	c, k := selfSigned(t, "acme", time.Hour)
	_, other := selfSigned(t, "other", time.Hour)
	if err := st.Set(sec.Name, c, other); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Set with a mismatched key: %v", err)
	}
	if err := st.Set(sec.Name, c, k); err != nil {
		t.Fatal(err)
	}
	<-st.Changed()
	if got, _, err := st.PEM(sec); err != nil || !bytes.Equal(got, c) {
		t.Errorf("override not served: %v", err)
	}
	st.Delete(sec.Name)
	if _, _, err := st.PEM(sec); err == nil {
		t.Error("Delete left the override in place")
	}
	if err := st.Set("client-ca/g/l", ca, nil); err != nil {
		t.Errorf("CA bundle refused: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		left    time.Duration
		warn    bool
		expired bool
	}{{90 * 24 * time.Hour, false, false}, {10 * 24 * time.Hour, true, false}, {-time.Hour, true, true}} {
		c := &x509.Certificate{NotAfter: now.Add(tc.left), Subject: pkix.Name{CommonName: "x"}}
		msg, expired := Expiry(c, now)
		if (msg != "") != tc.warn || expired != tc.expired {
			t.Errorf("%s left: %q expired=%v", tc.left, msg, expired)
		}
	}
}
