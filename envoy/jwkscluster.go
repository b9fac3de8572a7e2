package envoy

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// SystemCABundle is the CA bundle an https JWKS is verified against, on the
// Envoy's host (Debian, Ubuntu, Alpine and Envoy's images keep it there).
const SystemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// JWKSCluster returns the cluster jwt_authn fetches the JWKS at uri
// through: the URL's host and port (default 80 or 443) inline (STATIC for an
// IP address, STRICT_DNS for a name) and, for https, TLS with the host as
// SNI, verified against SystemCABundle with a DNS SAN
// matching the host. It fails on a URL that is not absolute http(s).
func JWKSCluster(name, uri string, connectTimeout time.Duration) (*clusterv3.Cluster, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("jwks uri %q: want an absolute http(s) URL", uri)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("jwks uri %q: bad port", uri)
	}
	c, err := HTTPCluster(name, net.JoinHostPort(u.Hostname(), port), connectTimeout)
	if err != nil || u.Scheme == "http" {
		return c, err
	}
	ctx := UpstreamTLSContext(u.Hostname(), "", "")
	ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{
		ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: SystemCABundle}},
			MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: u.Hostname()}},
			}},
		},
	}
	ts, err := TransportSocket(ctx)
	if err != nil {
		return nil, err
	}
	c.TransportSocket = ts
	return c, nil
}
