package translator

import (
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
)

// staticSecrets adds r's secrets to b as static secrets and points the SDS
// references of b's listeners and clusters at them (no sds_config), so that
// validate mode loads, and checks, the certificates and keys themselves.
func staticSecrets(t *testing.T, b *bootstrapv3.Bootstrap, r *Resources) {
	t.Helper()
	for _, s := range r.Secrets {
		b.StaticResources.Secrets = append(b.StaticResources.Secrets, proto.CloneOf(s))
	}
	for _, l := range b.StaticResources.Listeners {
		for _, fc := range l.GetFilterChains() {
			fc.TransportSocket = staticSDS(t, fc.GetTransportSocket(), &tlsv3.DownstreamTlsContext{})
		}
	}
	for _, c := range b.StaticResources.Clusters {
		c.TransportSocket = staticSDS(t, c.GetTransportSocket(), &tlsv3.UpstreamTlsContext{})
	}
}

// tlsContext is a Downstream or Upstream TLS context.
type tlsContext interface {
	proto.Message
	GetCommonTlsContext() *tlsv3.CommonTlsContext
}

func staticSDS(t *testing.T, ts *corev3.TransportSocket, ctx tlsContext) *corev3.TransportSocket {
	t.Helper()
	if ts == nil {
		return nil
	}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		t.Fatal(err)
	}
	common := ctx.GetCommonTlsContext()
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		s.SdsConfig = nil
	}
	if v := common.GetValidationContextSdsSecretConfig(); v != nil {
		v.SdsConfig = nil
	}
	out, err := envoy.TransportSocket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
