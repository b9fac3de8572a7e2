package envoy

import (
	"errors"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// XDSTLS is the TLS an Envoy uses on its xDS connection: its own client
// certificate and key (mTLS) and the CA that signed the control plane's
// certificate. They are file paths on the Envoy's host, read by Envoy.
type XDSTLS struct {
	// CertFile and KeyFile are the client certificate chain and key (PEM);
	// both or neither.
	CertFile, KeyFile string
	// CAFile is the CA bundle that verifies the control plane. Required.
	CAFile string
	// SNI is the server name sent and verified (a subject alternative name
	// of the control plane's certificate); default the xDS host.
	SNI string
}

// xdsTransportSocket returns the TLS transport socket of the xds cluster:
// TLS 1.2–1.3, ALPN h2, the client certificate, and the control plane's
// certificate verified against CAFile and its subject alternative names
// against SNI (default the xDS host, a DNS name or an IP address).
func xdsTransportSocket(t *XDSTLS, host string) (*corev3.TransportSocket, error) {
	if t.CAFile == "" {
		return nil, errors.New("bootstrap: xDS TLS needs the CA file that signed the control plane's certificate")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("bootstrap: xDS TLS client certificate and key go together")
	}
	sni := t.SNI
	if sni == "" {
		sni = host
	}
	common := &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2"},
		TlsParams: &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
			TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
		},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:                 fileSource(t.CAFile),
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{sanMatcher(sni)},
			},
		},
	}
	if t.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.CertFile),
			PrivateKey:       fileSource(t.KeyFile),
		}}
	}
	tc, err := Any(&tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: sni})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: xDS TLS: %w", err)
	}
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tc},
	}, nil
}

// sanMatcher requires name among the certificate's DNS (or, for an IP
// address, IP) subject alternative names.
func sanMatcher(name string) *tlsv3.SubjectAltNameMatcher {
	typ := tlsv3.SubjectAltNameMatcher_DNS
	if isIP(name) {
		typ = tlsv3.SubjectAltNameMatcher_IP_ADDRESS
	}
	return &tlsv3.SubjectAltNameMatcher{
		SanType: typ,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}},
	}
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

// withXDSTLS adds xdsTransportSocket to the xds cluster when t is set.
func withXDSTLS(c *clusterv3.Cluster, t *XDSTLS, hostport string) error {
	if t == nil {
		return nil
	}
	host, err := xdsTLSHost(t, hostport)
	if err != nil {
		return err
	}
	ts, err := xdsTransportSocket(t, host)
	if err != nil {
		return err
	}
	c.TransportSocket = ts
	return nil
}

// xdsTLSHost returns the host whose name the control plane's certificate
// must carry when t.SNI is empty: the xDS host. A list of replicas with
// different hosts needs an explicit SNI (one name on every replica's
// certificate), since Envoy sends and verifies one name per cluster.
func xdsTLSHost(t *XDSTLS, hostports string) (string, error) {
	var first string
	for i, hp := range strings.Split(hostports, ",") {
		host, _, err := splitHostPort(strings.TrimSpace(hp))
		if err != nil {
			return "", err
		}
		if i == 0 {
			first = host
		} else if host != first && t.SNI == "" {
			return "", fmt.Errorf("bootstrap: xDS TLS to replicas on different hosts (%s, %s) needs --xds-sni: "+
				"a name every replica's certificate carries", first, host)
		}
	}
	return first, nil
}
