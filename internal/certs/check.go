package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ExpiryWarning is how close to its expiry a certificate draws a warning.
const ExpiryWarning = 30 * 24 * time.Hour

// IsInlinePEM reports whether a policy value is PEM text rather than a file
// path: it holds "-----BEGIN" or a line break anywhere. Not only a prefix:
// `openssl pkcs12 -nodes` output starts with "Bag Attributes" lines, and
// taking such text for a path would quote the key in "cannot open" errors.
func IsInlinePEM(v string) bool {
	return strings.Contains(v, "-----BEGIN") || strings.ContainsAny(v, "\r\n")
}

// ParseChain parses the CERTIFICATE blocks of certPEM, leaf first. Errors
// never quote the PEM.
func ParseChain(certPEM []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q (want CERTIFICATE)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return chain, nil
}

// CheckPair parses a certificate chain and its private key and checks that
// the key belongs to the leaf. It returns the leaf. Errors never quote the
// PEM.
func CheckPair(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	chain, err := ParseChain(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, errors.New("the private key does not match the certificate")
	}
	return chain[0], nil
}

// parseKey parses a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM block found")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", b.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// Expiry describes how close c is to expiry at now: "" when it is valid for
// more than ExpiryWarning, otherwise a sentence; expired is true once
// NotAfter has passed.
func Expiry(c *x509.Certificate, now time.Time) (msg string, expired bool) {
	switch left := c.NotAfter.Sub(now); {
	case left <= 0:
		return fmt.Sprintf("certificate %q expired on %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339)), true
	case left < ExpiryWarning:
		return fmt.Sprintf("certificate %q expires on %s (in %d days)", c.Subject.CommonName,
			c.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24)), false
	}
	return "", false
}
