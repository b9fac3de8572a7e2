package policy

// Defaults of the TLS options.
const (
	DefaultMinTLSVersion = "1.2"
	DefaultHSTSMaxAge    = 31536000 // one year, in seconds
)

// ListenerTLS terminates TLS on a listener. Every PEM field (Cert, Key,
// ClientCA) is either a file path the control plane reads and watches, or
// inline PEM (text holding a "-----BEGIN" block or a line break).
type ListenerTLS struct {
	// Certificates in policy order: Envoy serves the one whose SANs match
	// the client's SNI, the first when none matches.
	Certificates []Certificate
	// MinVersion is "1.2" or "1.3"; empty means DefaultMinTLSVersion.
	MinVersion string
	// ClientCA, when set, requires client certificates chaining to it.
	ClientCA string
	// ACME, when set, obtains the listener's certificate from an ACME CA
	// instead of Certificates (see model_acme.go).
	ACME *ACME
}

// Certificate is a named certificate chain and its private key.
type Certificate struct {
	Name string
	Cert string
	Key  string
}

// HSTS is the Strict-Transport-Security header of a gateway's TLS
// listeners. MaxAge 0 means DefaultHSTSMaxAge (set explicitly? see
// MaxAgeSet).
type HSTS struct {
	MaxAge            int
	MaxAgeSet         bool
	IncludeSubDomains bool
	Preload           bool
}

// BackendTLS originates TLS to a backend. CA and the client certificate's
// Cert and Key are file paths or inline PEM, like ListenerTLS's.
type BackendTLS struct {
	SNI        string
	CA         string
	ClientCert *ClientCert
}

// ClientCert is the certificate Envoy presents to a backend (mTLS).
type ClientCert struct {
	Cert string
	Key  string
}
