package policy

import (
	"net"
	"net/url"
	"strings"
)

// maxACMEDomains is the most names one ACME certificate may carry (Let's
// Encrypt's limit).
const maxACMEDomains = 100

// acme checks a listener's tls.acme block at path.
func (c *checker) acme(path string, a ACME) {
	dp := fieldPath(path, "domains")
	if len(a.Domains) == 0 {
		c.errorf(dp, "list the host names the certificate is for, e.g. `domains: [api.example.com]`", "no domains")
	}
	if len(a.Domains) > maxACMEDomains {
		c.errorf(dp, "split the names over several listeners", "%d domains; an ACME certificate names at most %d", len(a.Domains), maxACMEDomains)
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		ip := indexPath(dp, i)
		low := strings.ToLower(d)
		switch {
		case strings.Contains(d, "*"):
			c.errorf(ip, "list each host name; wildcards need the DNS-01 challenge, which Tollgate does not run",
				"wildcard %q cannot be proven with HTTP-01", d)
		case net.ParseIP(d) != nil || !validSNI(d) || !strings.Contains(d, "."):
			c.errorf(ip, "use a fully qualified DNS host name without port, e.g. api.example.com", "invalid domain %q", d)
		case seen[low]:
			c.errorf(ip, "remove the duplicate", "domain %q is listed twice", d)
		}
		seen[low] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t,:")) {
		c.errorf(fieldPath(path, "email"), "give one address, e.g. ops@example.com", "invalid email %q", a.Email)
	}
	if a.Directory != "" {
		if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
			c.errorf(fieldPath(path, "directory"), "give the CA's https directory URL, e.g. "+DefaultACMEDirectory+" (the default)",
				"invalid ACME directory %q", a.Directory)
		}
	}
	rp := fieldPath(path, "renewBefore")
	if d, ok := c.duration(rp, a.RenewBefore); ok && d <= 0 {
		c.errorf(rp, "use a positive duration such as 720h (30 days, the default)", "renewBefore must be positive, got %s", a.RenewBefore)
	}
}

// gatewayACME checks that a gateway with ACME listeners can answer HTTP-01
// challenges: it needs a plaintext listener, which the CA reaches on port 80.
func (c *checker) gatewayACME(path string, g Gateway) {
	acmeAt, plain, port80 := -1, false, false
	for i, ln := range g.Listeners {
		if ln.TLS != nil && ln.TLS.ACME != nil && acmeAt < 0 {
			acmeAt = i
		}
		if ln.TLS == nil {
			plain = true
			port80 = port80 || ln.Port == 80
		}
	}
	if acmeAt < 0 {
		return
	}
	ap := fieldPath(fieldPath(indexPath(fieldPath(path, "listeners"), acmeAt), "tls"), "acme")
	switch {
	case !plain:
		c.errorf(ap, "add a plaintext listener, e.g. `{name: http, port: 80}`: the CA fetches the HTTP-01 token over plain HTTP",
			"gateway %q has no plaintext listener to answer ACME HTTP-01 challenges", g.Name)
	case !port80:
		c.warnf(ap, "add a plaintext listener on port 80, or forward port 80 to one",
			"the CA fetches HTTP-01 tokens from port 80, and no plaintext listener of gateway %q binds it", g.Name)
	}
}

// acmeListener checks the tls block at path of a listener with acme: the
// ACME certificate is the listener's only one.
func (c *checker) acmeListener(path string, t ListenerTLS) {
	if len(t.Certificates) > 0 {
		c.errorf(fieldPath(path, "acme"), "remove `certificates:` or `acme:`",
			"a listener gets its certificate either from `certificates` or from `acme`, not both")
	}
	c.acme(fieldPath(path, "acme"), *t.ACME)
}
