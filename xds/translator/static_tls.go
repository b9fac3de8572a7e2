package translator

import (
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
)

// staticSecrets adds r's secrets to b as static secrets and points the SDS
// references of b's listeners and clusters at them (no sds_config), so that
// validate mode loads, and checks, the certificates and keys themselves.
func staticSecrets(b *bootstrapv3.Bootstrap, r *Resources) error {
	for _, s := range r.Secrets {
		b.StaticResources.Secrets = append(b.StaticResources.Secrets, proto.CloneOf(s))
	}
	var err error
	for _, l := range b.StaticResources.Listeners {
		for _, fc := range l.GetFilterChains() {
			if fc.TransportSocket, err = staticSDS(fc.GetTransportSocket(), &tlsv3.DownstreamTlsContext{}); err != nil {
				return err
			}
		}
	}
	for _, c := range b.StaticResources.Clusters {
		if c.TransportSocket, err = staticSDS(c.GetTransportSocket(), &tlsv3.UpstreamTlsContext{}); err != nil {
			return err
		}
	}
	return nil
}

// tlsContext is a Downstream or Upstream TLS context.
type tlsContext interface {
	proto.Message
	GetCommonTlsContext() *tlsv3.CommonTlsContext
}

// staticSDS returns ts with its SDS secret references made static.
func staticSDS(ts *corev3.TransportSocket, ctx tlsContext) (*corev3.TransportSocket, error) {
	if ts == nil {
		return nil, nil
	}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, err
	}
	common := ctx.GetCommonTlsContext()
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		s.SdsConfig = nil
	}
	if v := common.GetValidationContextSdsSecretConfig(); v != nil {
		v.SdsConfig = nil
	}
	return envoy.TransportSocket(ctx)
}
