package translator

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// checkSDSReferences reports TLS contexts that reference a secret the
// resources lack (Envoy would keep the listener or cluster warming for
// ever) and secrets nothing references.
func checkSDSReferences(r *Resources) []error {
	have := map[string]bool{}
	for _, s := range r.Secrets {
		have[s.GetName()] = true
	}
	used := map[string]bool{}
	var errs []error
	for _, l := range r.Listeners {
		for _, fc := range l.GetFilterChains() {
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := unpackTLS(fc.GetTransportSocket().GetTypedConfig().GetValue(), fc.GetTransportSocket() != nil, ctx); err != nil {
				errs = append(errs, fmt.Errorf("listener %q: %w", l.GetName(), err))
				continue
			}
			errs = append(errs, sdsNames("listener "+l.GetName(), ctx.GetCommonTlsContext(), have, used)...)
		}
	}
	for _, c := range r.Clusters {
		errs = append(errs, clusterSDS(c, have, used)...)
	}
	for name := range have {
		if !used[name] {
			errs = append(errs, fmt.Errorf("secret %q: not referenced by any listener or cluster", name))
		}
	}
	return errs
}

func clusterSDS(c *clusterv3.Cluster, have, used map[string]bool) []error {
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := unpackTLS(c.GetTransportSocket().GetTypedConfig().GetValue(), c.GetTransportSocket() != nil, ctx); err != nil {
		return []error{fmt.Errorf("cluster %q: %w", c.GetName(), err)}
	}
	return sdsNames("cluster "+c.GetName(), ctx.GetCommonTlsContext(), have, used)
}

func unpackTLS(b []byte, present bool, m proto.Message) error {
	if !present {
		return nil
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("TLS transport socket: %w", err)
	}
	return nil
}

// sdsNames marks the secrets ctx references as used and reports missing
// ones.
func sdsNames(owner string, ctx *tlsv3.CommonTlsContext, have, used map[string]bool) []error {
	var names []string
	for _, s := range ctx.GetTlsCertificateSdsSecretConfigs() {
		names = append(names, s.GetName())
	}
	if v := ctx.GetValidationContextSdsSecretConfig(); v != nil {
		names = append(names, v.GetName())
	}
	var errs []error
	for _, n := range names {
		used[n] = true
		if !have[n] {
			errs = append(errs, fmt.Errorf("%s: references secret %q, which is missing", owner, n))
		}
	}
	return errs
}
