package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// PlaceholderName is the DNS name of the placeholder certificate.
const PlaceholderName = "acme-pending.tollgate.invalid"

// CertSource supplies the PEM of SDS secrets (xds/translator.CertSource).
type CertSource interface {
	PEM(s ir.Secret) (cert, key []byte, err error)
}

// PendingSource is the control plane's CertSource with ACME in mind: a
// certificate secret that has no material in the policy (an ACME
// listener's) and none installed yet gets the certificate Storage holds for
// it (after a restart, before its Manager has run) or else a self-signed
// placeholder for PlaceholderName, so the listener comes up — and the
// plaintext listeners answer the CA's challenges — before the first
// certificate is issued. Every other secret, and an ACME secret once
// installed, comes from Next.
type PendingSource struct {
	Next    CertSource
	Storage *Storage // optional

	mu    sync.Mutex
	cache map[string][2][]byte // by secret name
}

// PEM implements CertSource.
func (p *PendingSource) PEM(s ir.Secret) (cert, key []byte, err error) {
	cert, key, err = p.Next.PEM(s)
	if err == nil || s.Kind != ir.SecretCertificate || s.Cert != (ir.PEMSource{}) || s.Key != (ir.PEMSource{}) {
		return cert, key, err
	}
	if p.Storage != nil {
		if c, err := p.Storage.SecretCertificate(s.Name); err == nil && c != nil {
			return c.CertPEM, c.KeyPEM, nil
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.cache[s.Name]; ok {
		return c[0], c[1], nil
	}
	cert, key, err = selfSigned(PlaceholderName, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("placeholder for secret %s: %w", s.Name, err)
	}
	if p.cache == nil {
		p.cache = map[string][2][]byte{}
	}
	p.cache[s.Name] = [2][]byte{cert, key}
	return cert, key, nil
}

// selfSigned returns a self-signed ECDSA certificate for name, valid for a
// year from now.
func selfSigned(name string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
