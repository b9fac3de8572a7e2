package envoy

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TLSTransportSocketName is the name of Envoy's TLS transport socket.
const TLSTransportSocketName = "envoy.transport_sockets.tls"

// ModernCipherSuites are the TLS 1.2 cipher suites Tollgate offers: ECDHE
// key exchange with AES-GCM or ChaCha20-Poly1305 only (TLS 1.3 suites are
// not configurable in BoringSSL and are all AEAD).
var ModernCipherSuites = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305",
	"ECDHE-RSA-CHACHA20-POLY1305",
}

// ALPNProtocols are the application protocols a TLS listener offers.
var ALPNProtocols = []string{"h2", "http/1.1"}

// SDSSecretConfig references the secret named name, fetched over the
// bootstrap's ADS stream.
func SDSSecretConfig(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ConfigSourceADS()}
}

// TLSParams returns TLS parameters from min (TLSv1_2 or TLSv1_3) to TLS 1.3
// with ModernCipherSuites.
func TLSParams(min tlsv3.TlsParameters_TlsProtocol) *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: min,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
		CipherSuites:              append([]string(nil), ModernCipherSuites...),
	}
}

// DownstreamTLSContext returns a server TLS context presenting the
// certificate secrets certs (Envoy selects one by the client's SNI against
// each certificate's SANs, the first when none matches), offering h2 and
// http/1.1 over ALPN. A non-empty clientCA names the validation-context
// secret that client certificates must chain to, and makes a client
// certificate required.
func DownstreamTLSContext(certs []string, min tlsv3.TlsParameters_TlsProtocol, clientCA string) *tlsv3.DownstreamTlsContext {
	common := &tlsv3.CommonTlsContext{
		TlsParams:     TLSParams(min),
		AlpnProtocols: append([]string(nil), ALPNProtocols...),
	}
	for _, c := range certs {
		common.TlsCertificateSdsSecretConfigs = append(common.TlsCertificateSdsSecretConfigs, SDSSecretConfig(c))
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	if clientCA != "" {
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: SDSSecretConfig(clientCA),
		}
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
	}
	return ctx
}

// UpstreamTLSContext returns a client TLS context (TLS 1.2 to 1.3, modern
// ciphers) sending sni; a non-empty ca names the validation-context secret
// the server's certificate must chain to (with sni set, its SAN must also
// match sni); a non-empty clientCert names the certificate secret presented
// to the server.
func UpstreamTLSContext(sni, ca, clientCert string) *tlsv3.UpstreamTlsContext {
	common := &tlsv3.CommonTlsContext{TlsParams: TLSParams(tlsv3.TlsParameters_TLSv1_2)}
	if clientCert != "" {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{SDSSecretConfig(clientCert)}
	}
	if ca != "" {
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: SDSSecretConfig(ca),
		}
	}
	return &tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: sni, AutoSniSanValidation: sni != "" && ca != ""}
}

// TransportSocket wraps a TLS context (Downstream or Upstream) in Envoy's
// TLS transport socket.
func TransportSocket(ctx proto.Message) (*corev3.TransportSocket, error) {
	a, err := Any(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls transport socket: %w", err)
	}
	return &corev3.TransportSocket{
		Name:       TLSTransportSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}, nil
}

// TLSCertificateSecret returns the SDS secret name holding a certificate
// chain and its private key, inline.
func TLSCertificateSecret(name string, certPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inlineBytes(certPEM),
		PrivateKey:       inlineBytes(keyPEM),
	}}}
}

// ValidationContextSecret returns the SDS secret name holding a CA bundle
// that peers' certificates must chain to.
func ValidationContextSecret(name string, caPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inlineBytes(caPEM),
	}}}
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: append([]byte(nil), b...)}}
}
