package ir

import "strconv"

// TLS versions the IR knows (ListenerTLS.MinVersion).
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// SecretKind says what an SDS secret holds.
type SecretKind string

// The secret kinds.
const (
	// SecretCertificate is a certificate chain and its private key.
	SecretCertificate SecretKind = "certificate"
	// SecretCA is a bundle of CA certificates that validate peers.
	SecretCA SecretKind = "ca"
)

// PEMSource says where PEM material comes from: a file the control plane
// reads (and watches), or PEM written in the policy. Both empty means the
// material is supplied at run time only (see xds/translator.CertSource).
//
// Inline PEM never appears in the IR's JSON (it may hold a private key):
// InlineSHA256, its digest, stands in for it, so the policy version still
// changes when the PEM does.
type PEMSource struct {
	File         string `json:"file,omitempty"`
	Inline       string `json:"-"`
	InlineSHA256 string `json:"inlineSha256,omitempty"`
}

// Secret is one SDS secret a gateway's Envoys receive from the control
// plane. Its Name is stable (derived from the gateway, listener or backend
// and the certificate's name), so rotating the material changes only the
// secret's content, never the listeners or clusters that reference it.
type Secret struct {
	Name string     `json:"name"`
	Kind SecretKind `json:"kind"`
	// Cert is the certificate chain (SecretCertificate) or the CA bundle
	// (SecretCA).
	Cert PEMSource `json:"cert"`
	// Key is the private key (SecretCertificate only).
	Key PEMSource `json:"key,omitzero"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// CertificateSecrets are the names of the listener's certificate
	// secrets in policy order: Envoy picks the certificate whose SANs match
	// the client's SNI, and the first one when none matches (or no SNI).
	CertificateSecrets []string `json:"certificateSecrets"`
	// MinVersion is TLS12 or TLS13; the maximum is always TLS 1.3.
	MinVersion string `json:"minVersion"`
	// ClientCASecret, when set, names the CA secret that client
	// certificates must chain to; a client certificate is then required.
	ClientCASecret string `json:"clientCASecret,omitempty"`
	// ACME, when set, says the certificate secret is issued by an ACME CA
	// (see acme.go).
	ACME *ACME `json:"acme,omitempty"`
}

// BackendTLS originates TLS to a backend's endpoints.
type BackendTLS struct {
	// SNI sent to the upstream; empty sends none.
	SNI string `json:"sni,omitempty"`
	// CASecret names the CA secret the upstream's certificate must chain
	// to (and, with SNI set, whose SAN must match SNI); empty skips
	// verification.
	CASecret string `json:"caSecret,omitempty"`
	// ClientCertSecret names the certificate secret presented to the
	// upstream (mTLS); empty presents none.
	ClientCertSecret string `json:"clientCertSecret,omitempty"`
}

// HSTS is the Strict-Transport-Security header added to responses on a
// gateway's TLS listeners.
type HSTS struct {
	MaxAgeSeconds     int64 `json:"maxAgeSeconds"`
	IncludeSubDomains bool  `json:"includeSubDomains,omitempty"`
	Preload           bool  `json:"preload,omitempty"`
}

// Value returns the header value, e.g. "max-age=31536000; includeSubDomains".
func (h HSTS) Value() string {
	v := "max-age=" + strconv.FormatInt(h.MaxAgeSeconds, 10)
	if h.IncludeSubDomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// Secret returns the gateway's secret named name, or false.
func (g *Gateway) Secret(name string) (Secret, bool) {
	for _, s := range g.Secrets {
		if s.Name == name {
			return s, true
		}
	}
	return Secret{}, false
}

// HasTLS reports whether any listener of the gateway terminates TLS.
func (g *Gateway) HasTLS() bool {
	for _, l := range g.Listeners {
		if l.TLS != nil {
			return true
		}
	}
	return false
}

// ListenerCertSecretName is the SDS secret name of certificate cert of a
// gateway's TLS listener: stable across pushes and rotations.
func ListenerCertSecretName(gateway, listener, cert string) string {
	return "tls/" + gateway + "/" + listener + "/" + cert
}

// ListenerClientCASecretName is the SDS secret name of the CA bundle that
// validates client certificates on a gateway's TLS listener.
func ListenerClientCASecretName(gateway, listener string) string {
	return "client-ca/" + gateway + "/" + listener
}

// BackendCASecretName is the SDS secret name of the CA bundle that
// validates a TLS backend's certificates.
func BackendCASecretName(backend string) string {
	return "upstream-ca/" + backend
}

// BackendClientCertSecretName is the SDS secret name of the client
// certificate Envoy presents to a TLS backend.
func BackendClientCertSecretName(backend string) string {
	return "upstream-cert/" + backend
}
