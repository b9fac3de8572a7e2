package policy

import "time"

// Defaults of the ACME options.
const (
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	// DefaultACMERenewBefore is the remaining lifetime below which an ACME
	// certificate is renewed.
	DefaultACMERenewBefore = 30 * 24 * time.Hour
	// acmeCertName is the certificate name of an ACME listener's secret.
	acmeCertName = "acme"
)

// ACME obtains and renews a TLS listener's certificate from an ACME CA
// (ListenerTLS.ACME), proving control of the domains with HTTP-01 through
// the gateway's plaintext listeners.
type ACME struct {
	// Domains the certificate names; plain host names (HTTP-01 cannot
	// prove wildcards).
	Domains []string
	// Email is the ACME account's contact (optional).
	Email string
	// Directory is the CA's ACME directory URL; empty means
	// DefaultACMEDirectory.
	Directory string
	// RenewBefore is a Go duration; empty means DefaultACMERenewBefore.
	RenewBefore string
}
