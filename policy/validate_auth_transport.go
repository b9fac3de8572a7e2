package policy

import (
	"net/netip"
	"net/url"
	"strings"
)

// What a plain-http identity-provider URL exposes, by field.
var plainHTTPRisk = map[string]string{
	"jwksUri": "anyone on the network path can replace the signing keys and forge tokens for any caller",
	"introspectionUrl": "the client secret and every access token travel in clear, " +
		"and anyone on the network path can answer that any token is active",
}

// plainHTTP checks the transport of the provider at path's URL field
// (jwksUri, introspectionUrl): plain http is an error unless the host is
// loopback (127.0.0.0/8, ::1, localhost) or the provider sets
// `insecure: true`, which draws a warning. `insecure: true` where it
// changes nothing is a warning too. A URL httpURL refuses is left to it.
func (c *checker) plainHTTP(path, field, raw string, insecure bool) {
	ip := fieldPath(path, "insecure")
	u, err := url.Parse(raw)
	plain := raw != "" && err == nil && u.Scheme == "http" && u.Hostname() != "" && httpURLProblem(raw) == ""
	switch {
	case plain && isLoopbackHost(u.Hostname()):
		if insecure {
			c.warnf(ip, "remove `insecure: true`", "insecure has no effect: %s %q is on a loopback host, which plain http may reach anyway", field, raw)
		}
	case plain && insecure:
		c.warnf(ip, "use https://, and remove `insecure: true`",
			"%s %q is plain http (insecure: true): %s", field, raw, plainHTTPRisk[field])
	case plain:
		c.errorf(fieldPath(path, field), "use https://; if the network path is trusted (e.g. a sidecar), set `insecure: true` on the provider",
			"%s %q is plain http: %s", field, raw, plainHTTPRisk[field])
	case insecure && (raw == "" || err == nil && u.Scheme == "https"):
		c.warnf(ip, "remove `insecure: true`", "insecure has no effect: the provider has no plain http %s", field)
	}
}

// isLoopbackHost reports whether host (a URL's Hostname) is localhost or
// a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
