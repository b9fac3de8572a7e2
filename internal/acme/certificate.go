package acme

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Certificate is an issued certificate: the PEM chain (leaf first) and the
// PEM private key, with facts of the leaf.
type Certificate struct {
	CertPEM   []byte
	KeyPEM    []byte
	Domains   []string // the leaf's DNS names, sorted
	NotBefore time.Time
	NotAfter  time.Time
	Serial    string // hex
}

// ParseCertificate checks that certPEM's leaf and keyPEM belong together
// and returns them as a Certificate.
func ParseCertificate(certPEM, keyPEM []byte) (*Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	if len(pair.Certificate) == 0 {
		return nil, errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse leaf certificate: %w", err)
	}
	domains := make([]string, 0, len(leaf.DNSNames))
	for _, d := range leaf.DNSNames {
		domains = append(domains, strings.ToLower(d))
	}
	slices.Sort(domains)
	return &Certificate{
		CertPEM: certPEM, KeyPEM: keyPEM, Domains: domains,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Serial: leaf.SerialNumber.Text(16),
	}, nil
}

// RenewAt is when c is due for renewal: renewBefore ahead of its expiry,
// but never sooner than a third of its lifetime after it was issued, so a
// CA issuing short-lived certificates (shorter than renewBefore) is not
// asked for a new one in a loop.
func (c *Certificate) RenewAt(renewBefore time.Duration) time.Time {
	at := c.NotAfter.Add(-renewBefore)
	if floor := c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 3); at.Before(floor) {
		return floor
	}
	return at
}

// covers reports whether c names exactly domains (sorted, lower case).
func (c *Certificate) covers(domains []string) bool {
	return slices.Equal(c.Domains, domains)
}
