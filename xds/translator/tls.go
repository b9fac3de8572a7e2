package translator

import (
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// CertSource supplies the PEM material of SDS secrets. The translator asks
// it for every secret of a gateway (ir.Gateway.Secrets) and puts the answer,
// inline, into the gateway's Secret resources, which Envoy receives over ADS
// (SDS): certificates never reach Envoy as file paths.
//
// PEM returns the certificate chain (or, for an ir.SecretCA, the CA bundle)
// and, for an ir.SecretCertificate, the private key. Implementations must
// never log the material. internal/certs.Store is the control plane's
// implementation: it reads the policy's files and inline PEM and lets
// run-time sources (ACME) override a secret by name.
type CertSource interface {
	PEM(s ir.Secret) (cert, key []byte, err error)
}

// secrets returns the SDS secrets of gw, sorted by name, with the material
// src supplies.
func secrets(gw *ir.Gateway, src CertSource) ([]*tlsv3.Secret, error) {
	if len(gw.Secrets) == 0 {
		return nil, nil
	}
	if src == nil {
		return nil, fmt.Errorf("gateway has TLS secrets but no certificate source was given (Options.Certs)")
	}
	out := make([]*tlsv3.Secret, 0, len(gw.Secrets))
	for _, s := range gw.Secrets {
		cert, key, err := src.PEM(s)
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", s.Name, err)
		}
		switch s.Kind {
		case ir.SecretCertificate:
			out = append(out, envoy.TLSCertificateSecret(s.Name, cert, key))
		case ir.SecretCA:
			out = append(out, envoy.ValidationContextSecret(s.Name, cert))
		default:
			return nil, fmt.Errorf("secret %q: unknown kind %q", s.Name, s.Kind)
		}
	}
	return out, nil
}

// minTLS maps an IR minimum version to Envoy's; empty means TLS 1.2.
func minTLS(v string) (tlsv3.TlsParameters_TlsProtocol, error) {
	switch v {
	case ir.TLS12, "":
		return tlsv3.TlsParameters_TLSv1_2, nil
	case ir.TLS13:
		return tlsv3.TlsParameters_TLSv1_3, nil
	}
	return 0, fmt.Errorf("unsupported minimum TLS version %q", v)
}

// applyListenerTLS adds, to each listener of gw (listeners and routes are
// in the order of gw.Listeners, one each):
//   - on a TLS listener, the TLS transport socket (certificates over SDS,
//     SNI-based selection, ALPN h2 and http/1.1, optional client
//     certificates) and, with HSTS, the Strict-Transport-Security response
//     header on its route table;
//   - on a plaintext listener of a gateway with RedirectHTTPS, a connection
//     manager with the router only, whose route table answers every request
//     with a 301 to https (on the gateway's TLS port).
func applyListenerTLS(gw *ir.Gateway, listeners []*listenerv3.Listener, routes []*routev3.RouteConfiguration) error {
	for i, l := range gw.Listeners {
		var err error
		switch {
		case l.TLS != nil:
			err = terminateTLS(gw, l, listeners[i], routes[i])
		case gw.RedirectHTTPS:
			listeners[i], routes[i], err = redirectListener(gw, l)
		}
		if err != nil {
			return fmt.Errorf("listener %q: %w", l.Name, err)
		}
	}
	return nil
}

// terminateTLS puts the TLS transport socket on lis's filter chain and the
// HSTS header on its route table.
func terminateTLS(gw *ir.Gateway, l ir.Listener, lis *listenerv3.Listener, rc *routev3.RouteConfiguration) error {
	if len(l.TLS.CertificateSecrets) == 0 {
		return fmt.Errorf("TLS listener without a certificate")
	}
	min, err := minTLS(l.TLS.MinVersion)
	if err != nil {
		return err
	}
	ts, err := envoy.TransportSocket(envoy.DownstreamTLSContext(l.TLS.CertificateSecrets, min, l.TLS.ClientCASecret))
	if err != nil {
		return err
	}
	for _, fc := range lis.GetFilterChains() {
		fc.TransportSocket = ts
	}
	if gw.HSTS != nil {
		rc.ResponseHeadersToAdd = append(rc.ResponseHeadersToAdd, envoy.SetResponseHeader("strict-transport-security", gw.HSTS.Value()))
	}
	return nil
}

// redirectListener returns a plaintext listener l whose only route
// redirects to https.
func redirectListener(gw *ir.Gateway, l ir.Listener) (*listenerv3.Listener, *routev3.RouteConfiguration, error) {
	hcm := envoy.HTTPConnectionManager(l.Name, l.Name)
	envoy.ApplyEdge(hcm, edgeOptions(gw.Edge))
	rcName, err := bindRouteConfig(l.Name, hcm)
	if err != nil {
		return nil, nil, err
	}
	filter, err := envoy.HTTPConnectionManagerFilter(hcm)
	if err != nil {
		return nil, nil, err
	}
	vh := envoy.VirtualHost("redirect-https", []string{"*"}, envoy.HTTPSRedirectRoute("redirect-https", httpsPort(gw)))
	return envoy.Listener(l.Name, l.Address, l.Port, filter), envoy.RouteConfiguration(rcName, vh), nil
}

// httpsPort is the port a redirect sends clients to: 443 if a TLS listener
// uses it, else the TLS listener first by name.
func httpsPort(gw *ir.Gateway) uint32 {
	var ports []uint32
	for _, l := range gw.Listeners {
		if l.TLS != nil {
			ports = append(ports, l.Port)
		}
	}
	if len(ports) == 0 || slices.Contains(ports, 443) {
		return 443
	}
	return ports[0]
}

// backendTransportSocket returns the upstream TLS transport socket of b, or
// nil for a plaintext backend.
func backendTransportSocket(b *ir.Backend) (*corev3.TransportSocket, error) {
	if b.TLS == nil {
		return nil, nil
	}
	return envoy.TransportSocket(envoy.UpstreamTLSContext(b.TLS.SNI, b.TLS.CASecret, b.TLS.ClientCertSecret))
}
