package policy

import (
	"crypto/x509"
	"os"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/certs"
)

// pemFix is the fix shown for unreadable or invalid PEM.
const pemFix = "give a readable file path or inline PEM (text holding a -----BEGIN block)"

// tls checks every TLS option: listeners' certificates, versions and client
// CAs, the gateways' redirect and HSTS, the backends' upstream TLS. It reads
// the certificate files named in the policy (the control plane reads the
// same paths), parses every PEM, checks that keys match certificates and
// warns about certificates that expire within 30 days or have expired.
func (c *checker) tls(p *Policy) {
	now := time.Now()
	for i, g := range p.Gateways {
		gp := indexPath("gateways", i)
		for j, ln := range g.Listeners {
			if ln.TLS != nil {
				c.listenerTLS(fieldPath(indexPath(fieldPath(gp, "listeners"), j), "tls"), *ln.TLS, now)
			}
		}
		c.gatewayTLS(gp, g)
		c.gatewayACME(gp, g)
	}
	for i, b := range p.Backends {
		if b.TLS != nil {
			c.backendTLS(fieldPath(indexPath("backends", i), "tls"), *b.TLS, now)
		}
	}
}

func (c *checker) listenerTLS(path string, t ListenerTLS, now time.Time) {
	cp := fieldPath(path, "certificates")
	if len(t.Certificates) == 0 && t.ACME == nil {
		c.errorf(cp, "add a certificate, e.g. `{name: main, cert: tls.crt, key: tls.key}`, or `acme: {domains: [api.example.com]}`", "a TLS listener needs at least one certificate")
	}
	if t.ACME != nil {
		c.acmeListener(path, t)
	}
	seen := map[string]string{}
	for i, cert := range t.Certificates {
		ip := indexPath(cp, i)
		c.name(fieldPath(ip, "name"), "certificate", cert.Name, seen)
		c.certPair(ip, cert.Cert, cert.Key, now)
	}
	c.minVersion(fieldPath(path, "minVersion"), t.MinVersion)
	if t.ClientCA != "" {
		c.caBundle(fieldPath(path, "clientCA"), t.ClientCA, now)
	}
}

func (c *checker) minVersion(path, v string) {
	switch v {
	case "", "1.2", "1.3":
	case "1.0", "1.1", "1":
		c.errorf(path, "use minVersion \"1.2\" (the default) or \"1.3\"",
			"TLS %s is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and insecure", v)
	default:
		c.errorf(path, "use minVersion \"1.2\" (the default) or \"1.3\"", "unknown TLS version %q", v)
	}
}

func (c *checker) gatewayTLS(path string, g Gateway) {
	hasTLS, hasPlain := false, false
	for _, ln := range g.Listeners {
		hasTLS = hasTLS || ln.TLS != nil
		hasPlain = hasPlain || ln.TLS == nil
	}
	if g.RedirectHTTPS && !hasTLS {
		c.errorf(fieldPath(path, "redirectHTTPS"), "add a listener with `tls:` to redirect to, or remove redirectHTTPS",
			"gateway %q redirects to https but has no TLS listener", g.Name)
	}
	if g.RedirectHTTPS && hasTLS && !hasPlain {
		c.warnf(fieldPath(path, "redirectHTTPS"), "add a plaintext listener, or remove redirectHTTPS",
			"gateway %q has no plaintext listener to redirect", g.Name)
	}
	if g.HSTS == nil {
		return
	}
	hp := fieldPath(path, "hsts")
	if !hasTLS {
		c.warnf(hp, "add a TLS listener, or remove hsts", "hsts applies to TLS listeners only and gateway %q has none", g.Name)
	}
	if g.HSTS.MaxAgeSet && g.HSTS.MaxAge < 0 {
		c.errorf(fieldPath(hp, "maxAge"), "give a number of seconds ≥ 0, e.g. 31536000 (one year)", "maxAge %d is negative", g.HSTS.MaxAge)
	}
	if g.HSTS.Preload && (!g.HSTS.IncludeSubDomains || g.HSTS.MaxAgeSet && g.HSTS.MaxAge < DefaultHSTSMaxAge) {
		c.errorf(fieldPath(hp, "preload"), "set `includeSubDomains: true` and maxAge ≥ 31536000, or drop preload",
			"preload requires includeSubDomains and a maxAge of at least one year (hstspreload.org)")
	}
}

func (c *checker) backendTLS(path string, t BackendTLS, now time.Time) {
	if t.SNI != "" && !validSNI(t.SNI) {
		c.errorf(fieldPath(path, "sni"), "use a DNS host name without port, e.g. users.internal", "invalid SNI %q", t.SNI)
	}
	if t.CA != "" {
		c.caBundle(fieldPath(path, "ca"), t.CA, now)
	}
	if t.ClientCert != nil {
		c.certPair(fieldPath(path, "clientCert"), t.ClientCert.Cert, t.ClientCert.Key, now)
	}
	if t.CA == "" {
		c.warnf(path, "add `ca:` with the CA that signs the backend's certificate",
			"the backend's certificate is not verified (no ca)")
	}
}

func validSNI(s string) bool {
	if len(s) > 253 || strings.ContainsAny(s, " :/*") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
	}
	return true
}

// certPair checks a certificate and key at path (fields cert and key).
func (c *checker) certPair(path, cert, key string, now time.Time) {
	certPEM, ok1 := c.readPEM(fieldPath(path, "cert"), cert)
	keyPEM, ok2 := c.readPEM(fieldPath(path, "key"), key)
	if !ok1 || !ok2 {
		return
	}
	leaf, err := certs.CheckPair(certPEM, keyPEM)
	if err != nil {
		c.errorf(path, "give the certificate chain (leaf first) and the private key of its leaf", "invalid certificate: %v", err)
		return
	}
	c.expiry(fieldPath(path, "cert"), leaf, now)
}

// caBundle checks a CA bundle at path.
func (c *checker) caBundle(path, v string, now time.Time) {
	b, ok := c.readPEM(path, v)
	if !ok {
		return
	}
	chain, err := certs.ParseChain(b)
	if err != nil {
		c.errorf(path, "give one or more PEM CERTIFICATE blocks", "invalid CA bundle: %v", err)
		return
	}
	for _, ca := range chain {
		c.expiry(path, ca, now)
	}
}

func (c *checker) expiry(path string, cert *x509.Certificate, now time.Time) {
	msg, expired := certs.Expiry(cert, now)
	switch {
	case expired:
		// A warning, not an error: a certificate that expired while served
		// must not stop a restarted control plane from serving the policy.
		c.warnf(path, "renew the certificate: clients reject an expired one", "%s", msg)
	case msg != "":
		c.warnf(path, "renew the certificate soon", "%s", msg)
	}
}

// readPEM returns the PEM at v: inline text, or the content of the file v.
func (c *checker) readPEM(path, v string) ([]byte, bool) {
	if v == "" {
		return nil, false // Load reported the missing field
	}
	if certs.IsInlinePEM(v) {
		return []byte(v), true
	}
	b, err := os.ReadFile(v)
	if err != nil {
		c.errorf(path, pemFix, "cannot read the file: %v", err)
		return nil, false
	}
	return b, true
}
